using Akka.Actor;
using Akka.Event;
using Akka.Configuration;
using Ensemble.Coordination;
using Ensemble.Formulas;
using Ensemble.Hooks;
using Ensemble.Hosting;
using Ensemble.Services;
using Ensemble.Topology;
using Ensemble.Units;

namespace Ensemble.TestKit;

/// <summary>How to stand up an in-process environment.</summary>
public sealed record LocalEnvironmentOptions
{
    /// <summary>Where the store, formula storage, journal and machines live; a fresh temporary directory when null.</summary>
    public string? Directory { get; init; }

    public int Machines { get; init; } = 1;

    public ControllerSettings Controller { get; init; } = ControllerSettings.Default;

    public AgentSettings Agent { get; init; } = AgentSettings.Default;

    /// <summary>Fault injection around unit agents' steps (tests only).</summary>
    public IUnitFaults Faults { get; init; } = IUnitFaults.None;

    /// <summary>A ZooKeeper ensemble ("host:port,...") to hold the topology instead of the embedded store.</summary>
    public string? ZooKeeper { get; init; }

    /// <summary>The topology's root in the store (tests sharing one ZooKeeper server use one each).</summary>
    public string Root { get; init; } = TopologyStore.DefaultRoot;

    /// <summary>Extra actor system configuration when the environment creates its own system.</summary>
    public Config? SystemConfig { get; init; }

    /// <summary>Wraps the formula source the agents download from, e.g. to inject failing or corrupt downloads.</summary>
    public Func<IFormulaSource, IFormulaSource>? AgentStorage { get; init; }

    /// <summary>
    /// Agents fetch bundles from the controller's bundle server (found through the store, in chunks) as agents on
    /// other nodes do, instead of reading the formula storage directory.
    /// </summary>
    public bool FetchFromBundleServer { get; init; }

    /// <summary>Hooks to fail or time out on demand, on every machine.</summary>
    public HookFaults? HookFaults { get; init; }
}

/// <summary>
/// A whole environment in one process: the embedded store (or a ZooKeeper ensemble), file formula storage,
/// the service coordinators and one machine agent per simulated machine, wired exactly as the hosts wire
/// them (<see cref="EnsembleWiring"/>), with faults to inject: failing or corrupt downloads
/// (<see cref="LocalEnvironmentOptions.AgentStorage"/>), failing hooks (<see cref="HookFaults"/>), agent
/// crashes at a chosen step (<see cref="LocalEnvironmentOptions.Faults"/>), a machine lost
/// (<see cref="LoseMachineAsync"/>) and a store outage (<see cref="StoreOutage"/>). Deploys and upgrades go the way
/// the ensemble command sends them (<see cref="DeployAsync"/>, <see cref="UpgradeAsync"/>): the repository is read on
/// the test's side, and the bundle uploaded to the controller in chunks.
/// </summary>
public sealed class LocalEnvironment : IAsyncDisposable, IControllerChannel
{
    private readonly bool _ownsSystem;
    private readonly bool _ownsDirectory;
    private readonly Dictionary<string, (AgentContext Context, ICoordinationStore Session, IActorRef Agent)> _machines = new();
    private ICoordinationStore _controllerSession = null!;

    private LocalEnvironment(ActorSystem system, bool ownsSystem, LocalEnvironmentOptions options, string directory, bool ownsDirectory)
    {
        System = system;
        Options = options;
        Directory = directory;
        _ownsSystem = ownsSystem;
        _ownsDirectory = ownsDirectory;
        Server = EmbeddedCoordinationServer.Open(Path.Combine(directory, "store"));
        Storage = new FileFormulaStorage(Path.Combine(directory, "formula-storage"));
    }

    public ActorSystem System { get; }
    public LocalEnvironmentOptions Options { get; }
    public string Directory { get; }
    public EmbeddedCoordinationServer Server { get; }
    public IFormulaStorage Storage { get; }
    public TopologyStore Topology { get; private set; } = null!;
    public IActorRef Services { get; private set; } = ActorRefs.Nobody;

    /// <summary>The controller's upload receiver, which the operator's side sends bundles to.</summary>
    public IActorRef Uploads { get; private set; } = ActorRefs.Nobody;

    /// <summary>The operator's side of deploy and upgrade, as the ensemble command runs it, over this environment.</summary>
    public ServiceClient Client => new(this, global::System.IO.Path.Combine(Directory, "operator"));
    public IReadOnlyCollection<string> Machines => _machines.Keys;

    /// <summary>A fresh directory for an environment; pass it to <see cref="JournalConfig"/> and the options.</summary>
    public static string NewDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "ensemble-env-" + Guid.NewGuid().ToString("N")[..12]);
        global::System.IO.Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>The actor system configuration an environment in <paramref name="directory"/> needs.</summary>
    public static Config JournalConfig(string directory, Config? overrides = null) =>
        EnsembleConfig.ForSqliteJournal(Path.Combine(directory, "journal.db"), overrides);

    /// <summary>Starts an environment in <paramref name="system"/> (e.g. a TestKit's), or in a system of its own.</summary>
    public static async Task<LocalEnvironment> StartAsync(LocalEnvironmentOptions? options = null, ActorSystem? system = null)
    {
        options ??= new LocalEnvironmentOptions();
        var ownsDirectory = options.Directory is null;
        var directory = options.Directory ?? NewDirectory();
        var ownsSystem = system is null;
        system ??= ActorSystem.Create("ensemble", JournalConfig(directory, options.SystemConfig));
        var environment = new LocalEnvironment(system, ownsSystem, options, directory, ownsDirectory);
        await environment.StartNodesAsync();
        return environment;
    }

    private async Task StartNodesAsync()
    {
        _controllerSession = await ConnectAsync();
        Topology = new TopologyStore(_controllerSession, Options.Root);
        await Topology.EnsureLayoutAsync();
        var controller = new ControllerContext(Topology, Storage, Options.Controller);
        (Uploads, _) = await EnsembleWiring.StartFormulaTransferAsync(System, controller, ((FileFormulaStorage)Storage).IncomingDirectory);
        for (var i = 0; i < Options.Machines; i++) await StartMachineAsync($"m{i}");
        Services = await EnsembleWiring.StartControllerAsync(System, controller);
    }

    /// <summary>Starts (or starts again) the agent of a machine; its units resume from their state files.</summary>
    public async Task StartMachineAsync(string machine)
    {
        var session = await ConnectAsync();
        var topology = new TopologyStore(session, Options.Root);
        var dataDirectory = UnitPaths.MachineDirectory(Directory, machine);
        IFormulaSource source = Options.FetchFromBundleServer
            ? new Ensemble.Formulas.Transfer.ControllerFormulaSource(System, new Ensemble.Formulas.Transfer.ControllerDirectory(topology))
            : Storage;
        source = Options.AgentStorage?.Invoke(source) ?? source;
        var context = EnsembleWiring.AgentContextFor(machine, dataDirectory, topology, source, Options.Agent, IUnitFaults.Around(Options.Faults),
            Akka.Event.Logging.GetLogger(System, $"formula-cache-{machine}"));
        if (Options.HookFaults is { } hookFaults) context = context with { Hooks = hookFaults.Around(context.Hooks) };
        context = EnsembleWiring.WithHookTools(context, "127.0.0.1");
        var agent = await EnsembleWiring.StartAgentAsync(System, context, StoreOutage.Unwrap(session));
        _machines[machine] = (context, session, agent);
        await WaitUntilAsync(async () => await Topology.GetAgentAsync(machine) is not null, TimeSpan.FromSeconds(10), $"agent {machine} to register");
    }

    /// <summary>
    /// A new store session: on the embedded server, or on the ZooKeeper ensemble when one is given; it fails
    /// while <see cref="StoreOutage"/> lasts.
    /// </summary>
    public async Task<ICoordinationStore> ConnectAsync() => StoreOutage.Around(Options.ZooKeeper is { } servers
        ? await RenewingZooKeeperStore.ConnectAsync(new Ensemble.ZooKeeper.ZooKeeperOptions(servers, TimeSpan.FromSeconds(10)),
            log: message => System.Log.Warning("{0}", message))
        : Server.Connect());

    /// <summary>Begin it, and every store operation of the environment fails with ConnectionLoss until it ends.</summary>
    public StoreOutage StoreOutage { get; } = new();

    /// <summary>The store session a machine's agent uses (the backend's own, not the outage wrapper).</summary>
    public ICoordinationStore MachineSession(string machine) => StoreOutage.Unwrap(_machines[machine].Session);

    /// <summary>The store session the service coordinators use (the backend's own, not the outage wrapper).</summary>
    public ICoordinationStore ControllerSession => StoreOutage.Unwrap(_controllerSession);

    /// <summary>
    /// A machine lost: its agent stops where it stands (unit agents mid-step, their hooks killed) and its
    /// store session closes, so its presence vanishes; <see cref="StartMachineAsync"/> brings it back.
    /// </summary>
    public Task LoseMachineAsync(string machine) => StopMachineAsync(machine);

    /// <summary>Stops a machine's agent where it stands: unit agents stop mid-step (their hooks killed), its session closes.</summary>
    public async Task StopMachineAsync(string machine)
    {
        var (context, session, agent) = _machines[machine];
        await agent.GracefulStop(TimeSpan.FromSeconds(30));
        await session.DisposeAsync();
        if (context.Tools is { } tools) await tools.DisposeAsync();
        _machines.Remove(machine);
    }

    /// <summary>Kills the service coordinators and their sagas, then starts them again from their journals.</summary>
    public async Task RestartControllerAsync()
    {
        var probe = new TaskCompletionSource();
        var watcher = System.ActorOf(Props.Create(() => new DeathWatcher(Services, probe)));
        Services.Tell(Kill.Instance);
        await probe.Task.WaitAsync(TimeSpan.FromSeconds(30));
        System.Stop(watcher);
        // The guardian frees the name a moment after watchers hear of the death: try again until it has.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                Services = await EnsembleWiring.StartControllerAsync(System, new ControllerContext(Topology, Storage, Options.Controller));
                return;
            }
            catch (InvalidActorNameException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10));
            }
        }
    }

    public AgentContext Machine(string machine) => _machines[machine].Context;

    /// <summary>The on-disk layout of a unit, on whichever machine it was placed.</summary>
    public async Task<UnitPaths> UnitPathsAsync(string unit)
    {
        var record = await Topology.GetUnitAsync(unit) ?? throw new InvalidOperationException($"unit {unit} does not exist");
        return UnitPaths.On(Directory, record.Machine, unit);
    }

    public Task<T> AskAsync<T>(ServiceRequests.IServiceCommand command, TimeSpan? timeout = null) =>
        Services.Ask<T>(command, timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>
    /// Deploys the latest revision of <paramref name="formula"/> from <paramref name="repository"/> as the ensemble
    /// command does: the answer is ServiceDeployed or CommandRejected.
    /// </summary>
    public Task<object> DeployAsync(string service, string formula, string repository, int units) =>
        Client.DeployAsync(service, formula, repository, units);

    /// <summary>
    /// Upgrades <paramref name="service"/> as the ensemble command does, from <paramref name="repository"/> (null: the
    /// one it was deployed from): the answer is UpgradeStarted, UpgradePlanned or CommandRejected.
    /// </summary>
    public Task<object> UpgradeAsync(string service, string? repository = null, int? revision = null,
        IReadOnlyList<string>? units = null, int? maxParallel = null, bool dryRun = false) =>
        Client.UpgradeAsync(service, repository, revision, units, maxParallel, dryRun);

    Task<object> IControllerChannel.AskServicesAsync(object request, TimeSpan timeout) => Services.Ask<object>(request, timeout);

    Task<object> IControllerChannel.AskUploadsAsync(object request, TimeSpan timeout) => Uploads.Ask<object>(request, timeout);

    void IControllerChannel.TellUploads(object message) => Uploads.Tell(message);

    /// <summary>Polls a condition until it holds or the deadline passes.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan deadline, string what)
    {
        var until = DateTime.UtcNow + deadline;
        var pause = TimeSpan.FromMilliseconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"timed out after {deadline} waiting for {what}");
            await Task.Delay(pause);
            pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 200));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var machine in _machines.Keys.ToList()) await StopMachineAsync(machine);
        await Services.GracefulStop(TimeSpan.FromSeconds(30));
        if (_ownsSystem) await System.Terminate();
        await _controllerSession.DisposeAsync();
        Server.Dispose();
        if (_ownsDirectory && _ownsSystem)
        {
            try { global::System.IO.Directory.Delete(Directory, recursive: true); }
            catch (IOException) { }
        }
    }

    private sealed class DeathWatcher : ReceiveActor
    {
        public DeathWatcher(IActorRef target, TaskCompletionSource died)
        {
            Context.Watch(target);
            Receive<Terminated>(_ => died.TrySetResult());
        }
    }
}
