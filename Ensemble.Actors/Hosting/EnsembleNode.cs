using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using Ensemble.Coordination;
using Ensemble.Formulas;
using Ensemble.Hooks;
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
    /// <summary>Where an agent keeps its ZooKeeper session id and password, to resume it after a restart.</summary>
    public string ZooKeeperSessionFile => Path.Combine(MachineDirectory, "zookeeper-session.json");

    public const string ControllerRole = "controller";
    public const string AgentRole = "agent";

    public bool IsController => Roles.Contains(ControllerRole);
    public bool IsAgent => Roles.Contains(AgentRole);

    /// <summary>The data directory layout (see docs/architecture.md).</summary>
    public string StoreDirectory => Path.Combine(DataDirectory, "store");
    public string FormulaStorageDirectory => Path.Combine(DataDirectory, "formula-storage");
    public string JournalPath => Path.Combine(DataDirectory, "journal.db");
    public string MachineDirectory => UnitPaths.MachineDirectory(DataDirectory, Machine);
}

/// <summary>
/// An Akka.Cluster node of an environment: the controller role (the service manager as a cluster
/// singleton, reachable by ClusterClient at /user/services) and/or the agent role (the machine agent of
/// this machine), over the embedded store in the data directory.
/// </summary>
public sealed class EnsembleNode : IAsyncDisposable
{
    public const string SystemName = "ensemble";
    public const string ServicesPath = "/user/" + ServiceManager.ActorName;

    private readonly EmbeddedCoordinationServer? _server;
    private readonly List<ICoordinationStore> _sessions = [];

    private EnsembleNode(ActorSystem system, NodeOptions options, EmbeddedCoordinationServer? server)
    {
        System = system;
        Options = options;
        _server = server;
    }

    public ActorSystem System { get; }
    public NodeOptions Options { get; }
    public IActorRef? MachineAgent { get; private set; }

    /// <summary>This node's address, as clients put it in their contact points.</summary>
    public Address Address => Cluster.Get(System).SelfAddress;

    /// <summary>The receptionist path a ClusterClient uses as its initial contact.</summary>
    public string ContactPoint => $"{Address}/system/receptionist";

    /// <summary>Completes when the node has shut down (CoordinatedShutdown ran to the end).</summary>
    public Task WhenTerminated => System.WhenTerminated;

    /// <summary>The cluster and remoting configuration of a node, over the given node configuration.</summary>
    public static Config ConfigFor(NodeOptions options, Config? nodeConfig = null)
    {
        var roles = string.Join(", ", options.Roles.Select(r => $"\"{r}\""));
        var generated = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = "{{options.Hostname}}"
            akka.remote.dot-netty.tcp.port = {{options.Port}}
            akka.cluster.roles = [{{roles}}]
            akka.extensions = ["Akka.Cluster.Tools.Client.ClusterClientReceptionistExtensionProvider, Akka.Cluster.Tools"]
            """);
        return generated.WithFallback(EnsembleConfig.ForSqliteJournal(options.JournalPath, nodeConfig));
    }

    public static async Task<EnsembleNode> StartAsync(NodeOptions options, Config? nodeConfig = null)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var config = ConfigFor(options, nodeConfig);
        options = options with { ZooKeeper = options.ZooKeeper ?? NonEmpty(config.GetString("ensemble.zookeeper.servers", "")) };
        // Without ZooKeeper, the embedded store in the data directory stands in for it (one machine).
        var server = options.ZooKeeper is null ? EmbeddedCoordinationServer.Open(options.StoreDirectory) : null;
        var system = ActorSystem.Create(SystemName, config);
        var node = new EnsembleNode(system, options, server);
        try
        {
            await node.StartRolesAsync(config);
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
        return node;
    }

    private async Task StartRolesAsync(Config config)
    {
        var cluster = Cluster.Get(System);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        await cluster.JoinAsync(cluster.SelfAddress);
        await up.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var root = config.GetString("ensemble.root", TopologyStore.DefaultRoot);
        var storage = new FileFormulaStorage(Options.FormulaStorageDirectory);

        var sessionTimeout = config.GetTimeSpan("ensemble.zookeeper.session-timeout", TimeSpan.FromSeconds(10));
        if (Options.IsAgent)
        {
            var session = await OpenAsync(sessionTimeout, resumable: true);
            var settings = EnsembleConfig.AgentSettings(config);
            var topology = new TopologyStore(session, root);
            // Beside a controller the storage is right here; anywhere else bundles come from a controller's bundle server.
            IFormulaSource source = Options.IsController ? storage : new Formulas.Transfer.ControllerFormulaSource(System, new Formulas.Transfer.ControllerDirectory(topology));
            var context = EnsembleWiring.AgentContextFor(Options.Machine, Options.MachineDirectory, topology, source, settings,
                log: Akka.Event.Logging.GetLogger(System, "formula-cache"));
            MachineAgent = await EnsembleWiring.StartAgentAsync(System, context);
            var agent = MachineAgent;
            // A normal stop lets every unit finish the step it is in and begin no other.
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
            var context = new ControllerContext(new TopologyStore(session, root), storage, EnsembleConfig.ControllerSettings(config), Options.JournalPath);
            await context.Topology.EnsureLayoutAsync();
            System.ActorOf(ClusterSingletonManager.Props(
                ServiceManager.Props(context, Options.Environment), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(System).WithRole(NodeOptions.ControllerRole)), "services-singleton");
            var proxy = System.ActorOf(ClusterSingletonProxy.Props("/user/services-singleton",
                ClusterSingletonProxySettings.Create(System).WithRole(NodeOptions.ControllerRole)), ServiceManager.ActorName);
            ClusterClientReceptionist.Get(System).RegisterService(proxy);

            // Formulas travel: uploads from the operator in, bundles out to agents on other nodes.
            var (uploads, _) = await EnsembleWiring.StartFormulaTransferAsync(System, context, storage.IncomingDirectory);
            ClusterClientReceptionist.Get(System).RegisterService(uploads);
        }

        _ = System.WhenTerminated.ContinueWith(_ => CloseStore(), TaskScheduler.Default);
    }

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;

    /// <summary>
    /// A store session. An agent's ZooKeeper session is resumable: its id and password are saved in the
    /// machine directory, so an agent restarted within the session timeout keeps the session and with it
    /// its ephemeral presence node (the original design's way to upgrade the agents themselves).
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
            ZooKeeperCoordinationStore store;
            try
            {
                store = await ZooKeeperCoordinationStore.ConnectAsync(saved is null ? options
                    : options with { SessionId = saved.SessionId, SessionPassword = saved.Password });
            }
            catch (Ensemble.ZooKeeper.SessionExpiredException)
            {
                store = await ZooKeeperCoordinationStore.ConnectAsync(options);
            }
            if (resumable) ZooKeeperSessionFile.Save(Options.ZooKeeperSessionFile, new(store.Client.SessionId, store.Client.SessionPassword));
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
            foreach (var session in _sessions) session.DisposeAsync().AsTask().Wait();
            _server?.Dispose();
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
