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

    /// <summary>Where an agent keeps its ZooKeeper session id and password, to resume it after a restart.</summary>
    public string ZooKeeperSessionFile => Path.Combine(MachineDirectory, "zookeeper-session.json");

    public const string ControllerRole = "controller";
    public const string AgentRole = "agent";

    public bool IsController => Roles.Contains(ControllerRole);
    public bool IsAgent => Roles.Contains(AgentRole);
    public bool Joins => Join.Count > 0;

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
        return generated.WithFallback(EnsembleConfig.ForSqliteJournal(options.JournalPath, nodeConfig))
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
        var server = options.ZooKeeper is null && !options.Joins ? EmbeddedCoordinationServer.Open(options.StoreDirectory) : null;
        var system = ActorSystem.Create(SystemName, config);
        var node = new EnsembleNode(system, options, server);
        try
        {
            var cluster = Cluster.Get(system);
            IReadOnlyList<Address> seeds = [cluster.SelfAddress];
            if (options.Joins)
            {
                var admitted = await JoinGate.AdmitAsync(system, options.Join,
                    new MachineRequests.JoinMachine(options.Machine, options.Token ?? "", cluster.SelfAddress.ToString()),
                    start.GiveUpAfter, start.Say, start.Cancel);
                node.Options = options with { Environment = admitted.Environment, ZooKeeper = options.ZooKeeper ?? admitted.ZooKeeper };
                root = admitted.Root;
                seeds = admitted.SeedNodes.Select(Address.Parse).ToList();
                if (seeds.Count == 0) throw new InvalidOperationException("the controller admitted this node but named no seed node to join");
            }
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
        var first = await Task.WhenAny(up.Task, System.WhenTerminated, Task.Delay(MemberUpDeadline));
        if (first != up.Task)
            throw new InvalidOperationException(System.WhenTerminated.IsCompleted
                ? $"the cluster at {string.Join(", ", seeds)} removed this node while it joined"
                : $"this node did not become a member of the cluster at {string.Join(", ", seeds)} within {MemberUpDeadline.TotalSeconds:0} s");
        System.ActorOf(MembershipLog.Props(), "membership-log");
        if (!Options.IsController) System.ActorOf(ControllerWatch.Props(), "controller-watch");

        var storage = new FileFormulaStorage(Options.FormulaStorageDirectory);

        var sessionTimeout = config.GetTimeSpan("ensemble.zookeeper.session-timeout", TimeSpan.FromSeconds(10));
        if (Options.IsAgent)
        {
            var session = await OpenAsync(sessionTimeout, resumable: true);
            _storeProbes.Add(new Health.StoreProbe("agent", session, root));
            var settings = EnsembleConfig.AgentSettings(config);
            var topology = new TopologyStore(session, root);
            // Beside a controller the storage is right here; anywhere else bundles come from a controller's bundle server.
            IFormulaSource source = Options.IsController ? storage : new Formulas.Transfer.ControllerFormulaSource(System, new Formulas.Transfer.ControllerDirectory(topology));
            var context = EnsembleWiring.AgentContextFor(Options.Machine, Options.MachineDirectory, topology, source, settings,
                log: Akka.Event.Logging.GetLogger(System, "formula-cache"));
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
            var session = await OpenAsync(sessionTimeout, resumable: false);
            _storeProbes.Add(new Health.StoreProbe("controller", session, root));
            var topology = new TopologyStore(session, root);
            await topology.EnsureLayoutAsync();
            var registry = System.ActorOf(MachineRegistry.Props(topology, new MachineRegistrySettings(
                Options.Environment, Options.ZooKeeper, root, Options.IsAgent ? Options.Machine : null,
                config.GetInt("ensemble.limits.machines-per-environment", 1000))), MachineRegistry.ActorName);
            var context = new ControllerContext(topology, storage, EnsembleConfig.ControllerSettings(config), Options.JournalPath, registry);
            System.ActorOf(ClusterSingletonManager.Props(
                ServiceManager.Props(context, Options.Environment), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(System).WithRole(NodeOptions.ControllerRole)), "services-singleton");
            var proxy = System.ActorOf(ClusterSingletonProxy.Props("/user/services-singleton",
                ClusterSingletonProxySettings.Create(System).WithRole(NodeOptions.ControllerRole)), ServiceManager.ActorName);
            var receptionist = ClusterClientReceptionist.Get(System);
            receptionist.RegisterService(proxy);
            receptionist.RegisterService(registry);
            new ConnectionFile(ConnectionFile.CurrentFormat, Options.Environment, [$"{Address.Host}:{Address.Port}"]).Write(Options.ConnectionFilePath);

            // Formulas travel: uploads from the operator in, bundles out to agents on other nodes.
            var (uploads, _) = await EnsembleWiring.StartFormulaTransferAsync(System, context, storage.IncomingDirectory);
            receptionist.RegisterService(uploads);
            receptionist.RegisterService(EnsembleWiring.StartEnvironmentHealth(System, Options.Environment));
        }

        EnsembleWiring.StartHealth(System, new Health.HealthContext(Options.IsAgent ? Options.Machine : null, _storeProbes,
            HasJournal: Options.IsController, EnsembleWiring.HealthSettings(config, Options.DataDirectory)));

        _ = System.WhenTerminated.ContinueWith(_ => CloseStore(), TaskScheduler.Default);
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
