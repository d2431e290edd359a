using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using Akka.Event;
using Ensemble.Coordination;
using Ensemble.Formulas;
using Ensemble.Hooks;
using Ensemble.Machines;
using Ensemble.Services;
using Ensemble.Topology;
using Ensemble.Units;

namespace Ensemble.Hosting;

/// <summary>What a node is asked to be; the host fills it from HOCON, flags and environment variables.</summary>
public sealed record NodeOptions(
    string DataDirectory,
    string Environment,
    IReadOnlySet<string> Roles,
    string Machine,
    string Hostname = "127.0.0.1",
    int Port = 0,
    string? ZooKeeper = null)
{
    /// <summary>The address other nodes and clients are told (Akka's public-hostname); null: <see cref="Hostname"/>, the one bound.</summary>
    public string? PublicHostname { get; init; }

    /// <summary>HOST:PORT of controllers whose join gate must admit this node before it joins; empty: it joins itself (a controller).</summary>
    public IReadOnlyList<string> Join { get; init; } = [];

    /// <summary>The join token `ensemble add-machine` issued for <see cref="Machine"/>.</summary>
    public string? Token { get; init; }

    /// <summary>
    /// A Npgsql connection string of the PostgreSQL database the controller journals to and keeps formula bundles in
    /// (shared by several controllers); null: the SQLite journal at <see cref="JournalPath"/> and bundles in
    /// <see cref="FormulaStorageDirectory"/>.
    /// </summary>
    public string? Journal { get; init; }

    /// <summary>How messages name the journal: the SQLite file, or the PostgreSQL database without its password.</summary>
    public string JournalLocation => Journal is null ? JournalPath : EnsembleConfig.DescribePostgres(Journal);

    /// <summary>How the controller directory names this node's journal kind.</summary>
    public string JournalKind => Journal is null ? Formulas.Transfer.ControllerPresence.SqliteJournal : Formulas.Transfer.ControllerPresence.PostgresJournal;

    /// <summary>Where an agent keeps its ZooKeeper session id and password, to resume it after a restart.</summary>
    public string ZooKeeperSessionFile => Path.Combine(MachineDirectory, "zookeeper-session.json");

    public const string ControllerRole = "controller";
    public const string AgentRole = "agent";

    public bool IsController => Roles.Contains(ControllerRole);
    public bool IsAgent => Roles.Contains(AgentRole);
    public bool Joins => Join.Count > 0;

    /// <summary>Whether the node passes a controller's join gate before it joins (agent nodes; a controller joins the controllers it finds).</summary>
    public bool PassesJoinGate => Joins && !IsController;

    public string AdvertisedHostname => string.IsNullOrEmpty(PublicHostname) ? Hostname : PublicHostname;

    /// <summary>The data directory layout (see docs/architecture.md).</summary>
    public string StoreDirectory => Path.Combine(DataDirectory, "store");
    public string FormulaStorageDirectory => Path.Combine(DataDirectory, "formula-storage");
    public string JournalPath => Path.Combine(DataDirectory, "journal.db");
    public string MachineDirectory => UnitPaths.MachineDirectory(DataDirectory, Machine);
    public string ConnectionFilePath => Path.Combine(DataDirectory, ConnectionFile.FileName);
}

/// <summary>How one incarnation of a node starts: where it reports progress, how long a first join may wait, and when to give up.</summary>
/// <param name="GiveUpAfter">how long the join gate may stay silent; null: ask forever (a node rejoining after a partition).</param>
public sealed record NodeStart(Action<string> Say, TimeSpan? GiveUpAfter, CancellationToken Cancel)
{
    public static NodeStart Default { get; } = new(_ => { }, TimeSpan.FromMinutes(1), CancellationToken.None);
}

/// <summary>
/// An Akka.Cluster node of an environment — one incarnation of it: the controller role (the service manager as a
/// cluster singleton, and the machine registry, both reachable by ClusterClient through the receptionist) and/or
/// the agent role (the machine agent of this machine). A controller joins itself (it is the first seed); a node
/// with --join is first admitted by a controller's join gate, then joins the seed nodes the gate names.
/// </summary>
public sealed class EnsembleNode : IAsyncDisposable
{
    public const string SystemName = "ensemble";
    public const string ServicesPath = "/user/" + ServiceManager.ActorName;

    private readonly EmbeddedCoordinationServer? _server;
    private readonly List<ICoordinationStore> _sessions = [];
    private readonly List<Health.StoreProbe> _storeProbes = [];
    private OpenTelemetry.Metrics.MeterProvider? _metrics;
    private Hooks.Tools.UnitHookTools? _hookTools;

    private EnsembleNode(ActorSystem system, NodeOptions options, EmbeddedCoordinationServer? server)
    {
        System = system;
        Options = options;
        _server = server;
    }

    public ActorSystem System { get; }

    /// <summary>The options as this incarnation runs with them (a joining node's environment and ZooKeeper come from its admission).</summary>
    public NodeOptions Options { get; private set; }

    public IActorRef? MachineAgent { get; private set; }

    /// <summary>This node's address, as clients put it in their contact points.</summary>
    public Address Address => Cluster.Get(System).SelfAddress;

    /// <summary>The receptionist path a ClusterClient uses as its initial contact.</summary>
    public string ContactPoint => $"{Address}/system/receptionist";

    /// <summary>Completes when the node has shut down (CoordinatedShutdown ran to the end).</summary>
    public Task WhenTerminated => System.WhenTerminated;

    /// <summary>Why the node shut down (null while it runs).</summary>
    public CoordinatedShutdown.Reason? ShutdownReason => CoordinatedShutdown.Get(System).ShutdownReason;

    /// <summary>
    /// Whether a node that shut down for <paramref name="reason"/> should start again: the cluster downed or
    /// removed it (a partition, a controller that went away), or it could not join — not an operator's stop.
    /// </summary>
    public static bool RejoinsAfter(CoordinatedShutdown.Reason? reason) =>
        reason is CoordinatedShutdown.ClusterDowningReason or CoordinatedShutdown.ClusterLeavingReason or CoordinatedShutdown.ClusterJoinUnsuccessfulReason;

    /// <summary>The cluster and remoting configuration of a node, over the given node configuration.</summary>
    public static Config ConfigFor(NodeOptions options, Config? nodeConfig = null)
    {
        var roles = string.Join(", ", options.Roles.Select(r => $"\"{r}\""));
        var generated = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = "{{options.Hostname}}"
            akka.remote.dot-netty.tcp.port = {{options.Port}}
            akka.remote.dot-netty.tcp.public-hostname = "{{options.AdvertisedHostname}}"
            akka.cluster.roles = [{{roles}}]
            akka.extensions = ["Akka.Cluster.Tools.Client.ClusterClientReceptionistExtensionProvider, Akka.Cluster.Tools"]
            """);
        return generated.WithFallback(EnsembleConfig.ForJournal(options.Journal, options.JournalPath, nodeConfig))
            // A joining node talks to the join gate with a ClusterClient before it is a member; its messages and the
            // pub-sub envelope it wraps them in need their serializers bound here too.
            .WithFallback(ClusterClientReceptionist.DefaultConfig())
            .WithFallback(DistributedPubSub.DefaultConfig());
    }

    public static Task<EnsembleNode> StartAsync(NodeOptions options, Config? nodeConfig = null) => StartAsync(options, nodeConfig, NodeStart.Default);

    public static async Task<EnsembleNode> StartAsync(NodeOptions options, Config? nodeConfig, NodeStart start)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var config = ConfigFor(options, nodeConfig);
        var root = config.GetString("ensemble.root", TopologyStore.DefaultRoot);
        options = options with { ZooKeeper = options.ZooKeeper ?? NonEmpty(config.GetString("ensemble.zookeeper.servers", "")) };
        // Without ZooKeeper, the embedded store in the data directory stands in for it (one machine).
        var server = options.ZooKeeper is null && !options.PassesJoinGate ? EmbeddedCoordinationServer.Open(options.StoreDirectory) : null;
        var system = ActorSystem.Create(SystemName, config);
        var node = new EnsembleNode(system, options, server);
        try
        {
            var cluster = Cluster.Get(system);
            IReadOnlyList<Address> seeds = [cluster.SelfAddress];
            if (options.PassesJoinGate)
            {
                var admitted = await JoinGate.AdmitAsync(system, options.Join,
                    new MachineRequests.JoinMachine(options.Machine, options.Token ?? "", cluster.SelfAddress.ToString()),
                    start.GiveUpAfter, start.Say, start.Cancel);
                node.Options = options with { Environment = admitted.Environment, ZooKeeper = options.ZooKeeper ?? admitted.ZooKeeper };
                root = admitted.Root;
                seeds = admitted.SeedNodes.Select(Address.Parse).ToList();
                if (seeds.Count == 0) throw new InvalidOperationException("the controller admitted this node but named no seed node to join");
            }
            else if (options.IsController && options.ZooKeeper is not null)
                seeds = await node.ControllerSeedsAsync(config, root);
            await node.StartRolesAsync(config, root, seeds);
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
        return node;
    }

    private static readonly TimeSpan MemberUpDeadline = TimeSpan.FromSeconds(60);

    private async Task StartRolesAsync(Config config, string root, IReadOnlyList<Address> seeds)
    {
        var cluster = Cluster.Get(System);
        _metrics = Telemetry.MetricsExport.Start(Telemetry.MetricsExport.Settings.From(config), $"{cluster.SelfAddress.Host}:{cluster.SelfAddress.Port}");
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        if (seeds.Count == 1 && seeds[0] == cluster.SelfAddress) await cluster.JoinAsync(cluster.SelfAddress);
        else cluster.JoinSeedNodes(seeds);
        // A node the controller downs at once (not admitted after all) terminates instead of coming up.
        var first = await Task.WhenAny(up.Task, System.WhenTerminated, Task.Delay(Options.IsController && seeds[0] != cluster.SelfAddress ? ControllerJoinDeadline : MemberUpDeadline));
        if (first != up.Task)
            throw new InvalidOperationException(System.WhenTerminated.IsCompleted
                ? $"the cluster at {string.Join(", ", seeds)} removed this node while it joined"
                : $"this node did not become a member of the cluster at {string.Join(", ", seeds)} within {MemberUpDeadline.TotalSeconds:0} s");
        System.ActorOf(MembershipLog.Props(), "membership-log");
        if (!Options.IsController) System.ActorOf(ControllerWatch.Props(), "controller-watch");

        var (storage, incoming) = FormulaStorageFor(Options);
        if (Options.IsController && storage is PostgresFormulaStorage shared) await shared.CheckAsync();

        var sessionTimeout = config.GetTimeSpan("ensemble.zookeeper.session-timeout", TimeSpan.FromSeconds(10));
        if (Options.IsAgent)
        {
            var session = await OpenAsync(sessionTimeout, resumable: true);
            _storeProbes.Add(new Health.StoreProbe("agent", session, root));
            var settings = EnsembleConfig.AgentSettings(config);
            var topology = new TopologyStore(session, root);
            // Beside a controller the storage is right here; anywhere else bundles come from a controller's bundle server.
            IFormulaSource source = Options.IsController ? storage : new Formulas.Transfer.ControllerFormulaSource(System, new Formulas.Transfer.ControllerDirectory(topology));
            var context = EnsembleWiring.WithHookTools(EnsembleWiring.AgentContextFor(Options.Machine, Options.MachineDirectory, topology, source, settings,
                log: Akka.Event.Logging.GetLogger(System, "formula-cache")), Options.AdvertisedHostname, Akka.Event.Logging.GetLogger(System, "hook-tools"));
            _hookTools = context.Tools;
            MachineAgent = await EnsembleWiring.StartAgentAsync(System, context, session);
            var agent = MachineAgent;
            // A normal stop, and a node the cluster downs, let every unit finish the step it is in and begin no other.
            CoordinatedShutdown.Get(System).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "drain-units", async () =>
            {
                try { await agent.Ask<UnitReplies.Drained>(new UnitRequests.Drain(), settings.HookTimeout + TimeSpan.FromSeconds(15)); }
                catch (Exception) { /* shutdown goes on; the units resume from their state files */ }
                return Akka.Done.Instance;
            });
        }

        if (Options.IsController)
        {
            var session = _controllerSession ?? await OpenAsync(sessionTimeout, resumable: false);
            _storeProbes.Add(new Health.StoreProbe("controller", session, root));
            var topology = new TopologyStore(session, root);
            await topology.EnsureLayoutAsync();
            // The machine registry and the service coordinators are cluster singletons on the oldest controller: with
            // several controllers exactly one of each acts, and each moves to another controller when its node goes.
            var registry = StartSingleton(MachineRegistry.Props(topology, new MachineRegistrySettings(
                Options.Environment, Options.ZooKeeper, root, Options.IsAgent ? Options.Machine : null,
                config.GetInt("ensemble.limits.machines-per-environment", 1000), SharedJournal: Options.Journal is not null)), MachineRegistry.ActorName);
            if (Options.IsAgent) registry.Tell(new MachineRequests.ControllerMachine(Options.Machine, Address.ToString()));
            var context = new ControllerContext(topology, storage, EnsembleConfig.ControllerSettings(config), Options.JournalLocation, registry);
            var proxy = StartSingleton(ServiceManager.Props(context, Options.Environment), ServiceManager.ActorName);
            var receptionist = ClusterClientReceptionist.Get(System);
            receptionist.RegisterService(proxy);
            receptionist.RegisterService(registry);

            // Formulas travel: uploads from the operator in, bundles out to agents on other nodes.
            var presence = _presence ?? EnsembleWiring.PresenceOf(System, Options.JournalKind) with { Id = ControllerId(Options.DataDirectory) };
            var (uploads, _) = await EnsembleWiring.StartFormulaTransferAsync(System, context, incoming, presence, StartSingleton);
            receptionist.RegisterService(uploads);
            var controllers = (await new Formulas.Transfer.ControllerDirectory(topology).ListAsync()).Select(c => c.Node).Where(n => n != presence.Node);
            new ConnectionFile(ConnectionFile.CurrentFormat, Options.Environment, [presence.Node, .. controllers]).Write(Options.ConnectionFilePath);
            receptionist.RegisterService(EnsembleWiring.StartEnvironmentHealth(System, Options.Environment));
        }

        EnsembleWiring.StartHealth(System, new Health.HealthContext(Options.IsAgent ? Options.Machine : null, _storeProbes,
            HasJournal: Options.IsController, EnsembleWiring.HealthSettings(config, Options.DataDirectory)));

        _ = System.WhenTerminated.ContinueWith(_ => CloseStore(), TaskScheduler.Default);
    }

    /// <summary>A cluster singleton on the controllers, and its proxy at /user/<paramref name="name"/>.</summary>
    private IActorRef StartSingleton(Props props, string name)
    {
        System.ActorOf(ClusterSingletonManager.Props(props, PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(System).WithRole(NodeOptions.ControllerRole)), name + "-singleton");
        return System.ActorOf(ClusterSingletonProxy.Props($"/user/{name}-singleton",
            ClusterSingletonProxySettings.Create(System).WithRole(NodeOptions.ControllerRole)), name);
    }

    private ICoordinationStore? _controllerSession;
    private Formulas.Transfer.ControllerPresence? _presence;

    /// <summary>How long a starting controller waits for the controllers it found to let it join.</summary>
    private static readonly TimeSpan ControllerJoinDeadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The seed nodes of a controller whose environment keeps its topology in ZooKeeper. The store decides who
    /// founds the cluster: a controller that finds other controllers alive there (their ephemeral records) joins
    /// them, and founds a cluster of its own only when it finds none — so a controller restarted after a crash or
    /// a partition never forms a second world beside the running one. It announces itself before it joins, so
    /// the machine registry knows it for a controller. Controllers side by side must share a PostgreSQL journal:
    /// a SQLite one is refused, as is starting beside one.
    /// </summary>
    private async Task<IReadOnlyList<Address>> ControllerSeedsAsync(Config config, string root)
    {
        var sessionTimeout = config.GetTimeSpan("ensemble.zookeeper.session-timeout", TimeSpan.FromSeconds(10));
        _controllerSession = await OpenAsync(sessionTimeout, resumable: false);
        var topology = new TopologyStore(_controllerSession, root);
        await topology.EnsureLayoutAsync();
        var directory = new Formulas.Transfer.ControllerDirectory(topology);
        var self = Cluster.Get(System).SelfAddress;
        _presence = EnsembleWiring.PresenceOf(System, Options.JournalKind) with { Id = ControllerId(Options.DataDirectory) };
        var me = _presence.Node;
        // This controller's own record from before a crash (another port, its session not yet expired) is no other controller.
        foreach (var stale in (await directory.ListAsync()).Where(c => c.Id == _presence.Id && c.Node != me))
            await directory.UnregisterAsync(stale.Node);
        // Records of controllers that died go with their sessions, within the session timeout: wait that long for
        // them to go before refusing (a SQLite controller restarted at once, on another port, finds its own).
        var deadline = DateTime.UtcNow + sessionTimeout + TimeSpan.FromSeconds(2);
        while (true)
        {
            var others = (await directory.ListAsync()).Where(c => c.Node != me).ToList();
            var conflict = others.Count > 0 && (!_presence.SharesJournal || others.Any(o => !o.SharesJournal));
            if (!conflict)
            {
                await directory.RegisterAsync(_presence);
                var hinted = Options.Join.Select(j => Address.Parse($"akka.tcp://{SystemName}@{j}"));
                return others.Select(o => Address.Parse(o.Address ?? $"akka.tcp://{SystemName}@{o.Node}"))
                    .Concat(hinted).Where(a => a != self).Distinct().DefaultIfEmpty(self).ToList();
            }
            if (DateTime.UtcNow > deadline)
                throw new InvalidOperationException(
                    $"controller {others[0].Node} of environment '{Options.Environment}' is running (journal: {others[0].Journal ?? "sqlite"}), and this one journals to " +
                    $"{Options.JournalKind}; several controllers must share one PostgreSQL journal: start every controller with the same --journal, or stop the other one first");
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }
    }

    /// <summary>
    /// The controller's formula storage and the directory uploads arrive in. With a PostgreSQL journal the bundles are
    /// kept in that database too, beside the journal that names them: a controller taking over recovers services whose
    /// bundles another controller stored, and must serve them. Otherwise files in the data directory.
    /// </summary>
    public static (IFormulaStorage Storage, string IncomingDirectory) FormulaStorageFor(NodeOptions options)
    {
        if (options.Journal is null)
        {
            var files = new FileFormulaStorage(options.FormulaStorageDirectory);
            return (files, files.IncomingDirectory);
        }
        var shared = new PostgresFormulaStorage(options.Journal, options.FormulaStorageDirectory);
        return (shared, shared.IncomingDirectory);
    }

    /// <summary>The identity of the controller kept in <paramref name="dataDirectory"/>, made on its first start.</summary>
    private static string ControllerId(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "controller-id");
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: 32 } id) return id;
        var made = Guid.NewGuid().ToString("N");
        File.WriteAllText(path + ".tmp", made);
        File.Move(path + ".tmp", path, overwrite: true);
        return made;
    }

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;

    /// <summary>
    /// A store session. An agent's ZooKeeper session is resumable: its id and password are saved in the
    /// machine directory, so an agent restarted within the session timeout keeps the session and with it
    /// its ephemeral presence node (the original design's way to upgrade the agents themselves). A ZooKeeper
    /// session that expires (the host was cut off past the session timeout) is replaced by a new one.
    /// </summary>
    private async Task<ICoordinationStore> OpenAsync(TimeSpan sessionTimeout, bool resumable)
    {
        ICoordinationStore session;
        if (_server is not null)
        {
            session = _server.Connect();
        }
        else
        {
            var options = new Ensemble.ZooKeeper.ZooKeeperOptions(Options.ZooKeeper!, sessionTimeout);
            var saved = resumable ? ZooKeeperSessionFile.Load(Options.ZooKeeperSessionFile) : null;
            var log = Akka.Event.Logging.GetLogger(System, "zookeeper");
            var store = await RenewingZooKeeperStore.ConnectAsync(
                saved is null ? options : options with { SessionId = saved.SessionId, SessionPassword = saved.Password },
                opened: resumable ? opened => ZooKeeperSessionFile.Save(Options.ZooKeeperSessionFile, new(opened.Client.SessionId, opened.Client.SessionPassword)) : null,
                log: message => log.Warning("{0}", message));
            session = store;
        }
        _sessions.Add(session);
        return session;
    }

    private readonly Lock _closing = new();
    private bool _closed;

    private void CloseStore()
    {
        lock (_closing)
        {
            if (_closed) return;
            _closed = true;
            foreach (var session in _sessions)
            {
                try { session.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10)); }
                catch (Exception) { /* a session that cannot close expires on the server */ }
            }
            _server?.Dispose();
            _metrics?.Dispose();
            try { _hookTools?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5)); }
            catch (Exception) { /* the socket file is replaced at the next start */ }
        }
    }

    /// <summary>Runs CoordinatedShutdown (units drain first) and waits for the system to end.</summary>
    public async ValueTask DisposeAsync()
    {
        await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        await System.WhenTerminated;
        CloseStore();
    }
}

/// <summary>A saved ZooKeeper session (id and password), so a restarted agent can resume it.</summary>
public sealed record ZooKeeperSessionFile(long SessionId, byte[] Password)
{
    public static ZooKeeperSessionFile? Load(string path)
    {
        if (!File.Exists(path)) return null;
        try { return System.Text.Json.JsonSerializer.Deserialize<ZooKeeperSessionFile>(File.ReadAllText(path)); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public static void Save(string path, ZooKeeperSessionFile session)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, System.Text.Json.JsonSerializer.Serialize(session));
        File.Move(temp, path, overwrite: true);
    }
}
