using Ensemble.Coordination;
using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Formulas.Transfer;
using Ensemble.Services;
using Ensemble.Units;

namespace Ensemble.Hosting;

/// <summary>The one wiring of a node's actors, used by the real hosts and by the test kit alike.</summary>
public static class EnsembleWiring
{
    /// <summary>Starts the controller role: the service coordinators behind one router.</summary>
    public static async Task<IActorRef> StartControllerAsync(ActorSystem system, ControllerContext context, string name = ServiceManager.ActorName)
    {
        await context.Topology.EnsureLayoutAsync();
        return system.ActorOf(ServiceManager.Props(context), name);
    }

    /// <summary>
    /// Starts the controller's side of bundle transfer: the upload receiver (<c>/user/formula-uploads</c>, for the
    /// operator's uploads through the receptionist) and the bundle server (<c>/user/formula-bundles</c>, for agents),
    /// announced to agents by an ephemeral record in the store.
    /// </summary>
    /// <param name="startUploads">how the upload receiver is started: by default a plain actor; on a cluster node a singleton, so every chunk
    /// of an upload reaches the same receiver however many controllers the client's messages may go to.</param>
    public static async Task<(IActorRef Uploads, IActorRef Bundles)> StartFormulaTransferAsync(ActorSystem system, ControllerContext context, string incomingDirectory,
        ControllerPresence? presence = null, Func<Props, string, IActorRef>? startUploads = null)
    {
        var uploadProps = UploadReceiver.Props(context.Storage, incomingDirectory, context.FormulaLimits);
        var uploads = startUploads is null ? system.ActorOf(uploadProps, BundleTransfer.UploadsActorName) : startUploads(uploadProps, BundleTransfer.UploadsActorName);
        var bundles = system.ActorOf(BundleServer.Props(context.Storage), BundleTransfer.BundlesActorName);
        await new ControllerDirectory(context.Topology).RegisterAsync(presence ?? PresenceOf(system, ControllerPresence.SqliteJournal));
        return (uploads, bundles);
    }

    /// <summary>How this node announces itself as a controller (its bundle server lives at a fixed path, so the record can be written before it runs).</summary>
    public static ControllerPresence PresenceOf(ActorSystem system, string journal)
    {
        var address = ((ExtendedActorSystem)system).Provider.DefaultAddress;
        var node = address.Host is { } host && address.Port is { } port ? $"{host}:{port}" : "local";
        var bundles = new RootActorPath(address) / "user" / BundleTransfer.BundlesActorName;
        return new ControllerPresence(node, bundles.ToString(), address.ToString(), DateTimeOffset.UtcNow, journal);
    }

    /// <summary>
    /// What the unit agents of one machine share: its directory, its formula cache (fetching from
    /// <paramref name="source"/>: the controller's storage itself on a controller node, its bundle server elsewhere),
    /// and its hook runner. <paramref name="log"/> gets a line per bundle the cache fetched.
    /// </summary>
    public static AgentContext AgentContextFor(string machine, string machineDirectory, Topology.TopologyStore topology,
        IFormulaSource source, AgentSettings settings, IReadOnlyDictionary<UnitStep, Units.Steps.IUnitStep>? steps = null,
        Akka.Event.ILoggingAdapter? log = null) =>
        new(machine, machineDirectory, topology,
            new FormulaCache(source, Path.Combine(machineDirectory, "formula-cache"), log),
            new Hooks.ProcessHookRunner(settings.HookTimeout, settings.MaxParallelHooks), settings, steps ?? Units.Steps.UnitSteps.Standard);

    /// <summary>
    /// The agent's hook tools (socket server and tool wrappers in its machine directory), reporting
    /// <paramref name="address"/> as the units' address. Without the ensemble command beside this program (a node run
    /// from its own build folder) hooks run without tools, and the log says so.
    /// </summary>
    public static AgentContext WithHookTools(AgentContext context, string address, Akka.Event.ILoggingAdapter? log = null)
    {
        try
        {
            return context with { Tools = Hooks.Tools.UnitHookTools.Start(context.DataDirectory, address) };
        }
        catch (FileNotFoundException ex)
        {
            log?.Warning("machine {0}: {1}", context.Machine, ex.Message);
            return context;
        }
    }

    /// <summary>Starts the node's health actor (/user/health), which every node has whatever its roles.</summary>
    public static IActorRef StartHealth(ActorSystem system, Health.HealthContext context) =>
        system.ActorOf(Health.HealthActor.Props(context), Health.HealthActor.ActorName);

    /// <summary>Starts a controller's survey of every member's health (/user/environment-health), for the receptionist.</summary>
    public static IActorRef StartEnvironmentHealth(ActorSystem system, string environment) =>
        system.ActorOf(Health.EnvironmentHealthActor.Props(environment), Health.EnvironmentHealthActor.ActorName);

    /// <summary>The health settings of a node whose data directory is <paramref name="dataDirectory"/>.</summary>
    public static Health.HealthSettings HealthSettings(Akka.Configuration.Config config, string dataDirectory)
    {
        var file = config.GetString("ensemble.health.file", "");
        return new Health.HealthSettings(
            config.GetTimeSpan("ensemble.health.interval", TimeSpan.FromSeconds(5)),
            config.GetTimeSpan("ensemble.health.probe-timeout", TimeSpan.FromSeconds(3)),
            file == "off" ? null : string.IsNullOrWhiteSpace(file) ? Path.Combine(dataDirectory, Health.HealthFile.DefaultName) : file,
            config.GetInt("ensemble.health.http-port", 0));
    }

    /// <summary>Starts the agent role for one machine; it announces itself and adopts the units placed on it.</summary>
    public static async Task<IActorRef> StartAgentAsync(ActorSystem system, AgentContext context, ICoordinationStore session)
    {
        await context.Topology.EnsureLayoutAsync();
        var agent = system.ActorOf(MachineAgent.Props(context), MachineAgent.ActorName(context.Machine));
        // What an expired session owned (the agent's presence) is re-created by the machine agent.
        if (session is RenewingZooKeeperStore renewing)
            renewing.Renewed += _ => agent.Tell(MachineAgent.StoreSessionRenewed.Instance);
        return agent;
    }
}
