using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Ensemble.Formulas;
using Ensemble.Topology;
using static Ensemble.Services.ServiceEvents;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Services;

/// <summary>
/// The coordinator of one service: deploys it, adds and removes its units, and runs its formula upgrades
/// as one <see cref="UpgradeSaga"/> per unit, at most MaxParallel at a time. Journaled; the shared
/// topology in the coordination store is written before the journal records the change, and every recovery
/// reconciles the journal with the store (<see cref="ServiceLogic.Reconcile"/>), so a crash between the two
/// writes leaves nothing the journal does not learn of. Snapshots keep recovery short (<see cref="JournalHygiene"/>).
/// Work that touches disk or the store runs off the actor thread; meanwhile other requests wait (stash).
/// </summary>
public sealed class ServiceActor : ReceivePersistentActor, IWithTimers
{
    private readonly string _name;
    private readonly ControllerContext _context;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<IActorRef> _watchers = [];
    /// <summary>The last step each in-flight unit of the current run reported (not journaled: steps are frequent and only shown).</summary>
    private readonly Dictionary<string, string> _steps = new();
    /// <summary>The view of the run that ended last, so a watcher that subscribes late still learns how it ended.</summary>
    private UpgradeView? _lastView;
    private readonly ActorSystem _system = Context.System;
    private ServiceState _state;
    private IActorRef? _awaitingJournal;

    /// <summary>The result of asynchronous work: events to journal, then a reply.</summary>
    private sealed record WorkDone(IReadOnlyList<IServiceEvent> Events, object Reply, IActorRef ReplyTo);

    private sealed record ResumeUpgrade;

    /// <summary>The sequence number of the newest snapshot saved or asked for (0: none).</summary>
    private long _snapshotSequenceNr;

    public ServiceActor(string name, ControllerContext context)
    {
        _name = name;
        _context = context;
        _state = ServiceState.Empty(name);
        Telemetry.EnsembleMetrics.Upgrades.Track(Self, name, () => _state.Upgrade is not null);

        Recover<SnapshotOffer>(offer =>
        {
            _state = ((ServiceSnapshot)offer.Snapshot).State;
            _snapshotSequenceNr = offer.Metadata.SequenceNr;
        });
        Recover<IServiceEvent>(e => _state = ServiceLogic.Apply(_state, e));
        Recover<RecoveryCompleted>(_ =>
        {
            SnapshotIfDue();
            // Reconciling here, not by a message to itself: requests that arrived during recovery are delivered
            // next, and must wait (Busy) until the journal agrees with the store; so must a resumed upgrade.
            OnReconcile();
            if (_state.Upgrade is not null) Self.Tell(new ResumeUpgrade());
            Context.Parent.Tell(new ServiceManager.CoordinatorRecovered(_name));
        });
        Ready();
    }

    public static Props Props(string name, ControllerContext context) => Akka.Actor.Props.Create(typeof(ServiceActor), name, context);

    public static string PersistenceIdFor(string service) => $"service-{service}";

    public override string PersistenceId => PersistenceIdFor(_name);

    public ITimerScheduler Timers { get; set; } = null!;

    private void Ready()
    {
        Command<PrepareDeploy>(OnPrepareDeploy);
        Command<DeployService>(OnDeploy);
        Command<PrepareUpgrade>(OnPrepareUpgrade);
        Command<AddUnits>(OnAddUnits);
        Command<DestroyUnit>(OnDestroyUnit);
        Command<UpgradeFormula>(OnUpgrade);
        Command<ResolveUnit>(OnResolve);
        Command<GetUpgradeStatus>(_ => Sender.Tell(Status()));
        Command<WatchUpgrade>(OnWatch);
        Command<Terminated>(OnTerminated);
        Command<RespawnSaga>(OnRespawnSaga);
        Command<UpgradeSaga.Report>(OnSagaReport);
        Command<UnitUpgradeProgressed>(OnProgress);
        Command<ResumeUpgrade>(_ => OnResume());
        Command<DestroyService>(OnDestroyService);
        Command<SetConfig>(OnSetConfig);
        Command<GetConfig>(OnGetConfig);
        Hygiene();
    }

    // ---- journal hygiene ----

    /// <summary>Applies a journaled event to the state, and snapshots when <see cref="JournalHygiene.SnapshotDue"/> says so.</summary>
    private void Applied(IServiceEvent e)
    {
        _state = ServiceLogic.Apply(_state, e);
        SnapshotIfDue();
    }

    private void SnapshotIfDue()
    {
        if (!JournalHygiene.SnapshotDue(LastSequenceNr, _snapshotSequenceNr, _context.Settings.SnapshotEvery)) return;
        _snapshotSequenceNr = LastSequenceNr;
        SaveSnapshot(new ServiceSnapshot(_state));
    }

    /// <summary>
    /// Once a snapshot is saved, the events it covers and the snapshots before it are deleted. A failed save or
    /// delete only costs recovery time (the journal still holds everything), so it is logged, and the next
    /// snapshot tries again.
    /// </summary>
    private void Hygiene()
    {
        Command<SaveSnapshotSuccess>(m =>
        {
            var (eventsTo, snapshotsTo) = JournalHygiene.Redundant(m.Metadata.SequenceNr);
            DeleteMessages(eventsTo);
            DeleteSnapshots(new SnapshotSelectionCriteria(snapshotsTo));
        });
        Command<SaveSnapshotFailure>(m => _log.Warning("{0}: could not save a snapshot at {1}: {2}", _name, m.Metadata.SequenceNr, m.Cause.Message));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(m => _log.Warning("{0}: could not delete events up to {1}: {2}", _name, m.ToSequenceNr, m.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(m => _log.Warning("{0}: could not delete old snapshots: {1}", _name, m.Cause.Message));
    }

    /// <summary>
    /// After recovery: the store is written before the journal, so whatever a crash between the two left in the
    /// store alone is journaled now (<see cref="ServiceLogic.Reconcile"/>), and units adopted are sent their deploy
    /// again (idempotent on the agent: a unit already deployed stays as it is). Requests wait meanwhile.
    /// </summary>
    private void OnReconcile()
    {
        RunAsync(async (state, _) =>
        {
            ServiceRecord? service;
            var unreadable = new List<UnreadableRecord>();
            IReadOnlyList<UnitRecord> units;
            try
            {
                service = await _context.Topology.GetServiceAsync(_name);
                units = service is null ? [] : await _context.Topology.ListUnitsAsync(_name, unreadable);
            }
            catch (Exception ex) when (Coordination.StoreTrouble.IsTransient(ex))
            {
                // The store is away: go on with the journal as it is; the next recovery reconciles.
                _log.Warning("{0}: could not read the store to reconcile the journal with it: {1}", _name, ex.Message);
                return new WorkDone([], Reconciled.Instance, ActorRefs.Nobody);
            }
            if (unreadable.Count > 0)
            {
                // Units that cannot be read must not look removed: leave the journal as it is until they can.
                _log.Warning("{0}: {1} unit records unreadable; not reconciling the journal with the store", _name, unreadable.Count);
                return new WorkDone([], Reconciled.Instance, ActorRefs.Nobody);
            }
            var events = ServiceLogic.Reconcile(state, service, units);
            if (events.Count > 0) _log.Warning("{0}: the journal missed changes the store holds (a crash between the two writes); adopting {1}", _name, string.Join(", ", events));
            if (ServiceLogic.RecordToRestore(events.Aggregate(state, ServiceLogic.Apply), service) is { } restored)
            {
                _log.Warning("{0}: the service record names {1}, but no upgrade to it began; restoring {2}", _name, service!.Formula, restored.Formula);
                await _context.Topology.PutServiceAsync(restored);
            }
            foreach (var placed in events.OfType<ServiceEvents.UnitPlaced>())
                if (units.First(u => u.Name == placed.Unit) is { Sha256: { } sha } record && await _context.Topology.GetAgentAsync(record.Machine) is { } agent)
                    _system.ActorSelection(agent.Address).Tell(new UnitRequests.DeployUnit(record.Name, new FormulaRef(FormulaId.Parse(record.Formula), sha)));
            return new WorkDone(events, Reconciled.Instance, ActorRefs.Nobody);
        });
    }

    private sealed class Reconciled
    {
        public static readonly Reconciled Instance = new();
    }

    private void OnProgress(UnitUpgradeProgressed m)
    {
        _steps[m.Unit] = m.State;
        Broadcast(m);
    }

    /// <summary>Every subscription (and re-subscription) is answered with the whole view, so a watcher never depends on having seen every push.</summary>
    private void OnWatch(WatchUpgrade _)
    {
        if (_watchers.Add(Sender)) Context.Watch(Sender);
        Sender.Tell(Status());
    }

    private void Busy()
    {
        Command<WorkDone>(done =>
        {
            Stash.UnstashAll();
            Become(Ready);
            if (done.Events.Count == 0)
            {
                done.ReplyTo.Tell(done.Reply);
                return;
            }
            var last = done.Events[^1];
            _awaitingJournal = done.ReplyTo;
            PersistAll(done.Events, e =>
            {
                Applied(e);
                if (!ReferenceEquals(e, last)) return;
                _awaitingJournal = null;
                done.ReplyTo.Tell(done.Reply);
                if (e is UpgradeBegan)
                {
                    _steps.Clear();
                    _lastView = null;
                    LaunchMore();
                }
            });
        });
        Command<Status.Failure>(failure =>
        {
            Stash.UnstashAll();
            Become(Ready);
            _log.Error(failure.Cause, "{0}: request failed", _name);
        });
        // Saga reports and progress keep flowing while a request is being prepared, and questions about
        // them are answered: a status or a watcher that waited behind a long preparation would look like
        // no answer (a large deploy must not make `ensemble status` wait for it).
        Command<UpgradeSaga.Report>(OnSagaReport);
        Command<UnitUpgradeProgressed>(OnProgress);
        Command<GetUpgradeStatus>(_ => Sender.Tell(Status()));
        Command<WatchUpgrade>(OnWatch);
        Hygiene();
        CommandAny(_ => Stash.Stash());
    }

    /// <summary>
    /// The journal refused a write: the requester learns why, with the journal's location, instead of
    /// waiting for a reply that never comes; the coordinator then stops (Akka.Persistence's rule) and the
    /// service manager starts it again with backoff, recovering from what the journal holds.
    /// </summary>
    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "{0}: could not journal {1} in {2}", _name, @event.GetType().Name, _context.JournalLocation);
        _awaitingJournal?.Tell(new CommandRejected(_name, RejectionKind.Unavailable,
            $"the coordinator of '{_name}' could not write its journal {_context.JournalLocation} ({Units.DiskFaults.Reason(cause)}); " +
            (_context.JournalLocation.StartsWith("PostgreSQL", StringComparison.Ordinal)
                ? "check that the database runs and this controller reaches it, then try again"
                : "make the environment's data directory writable (and check the disk has room), then try again")));
        _awaitingJournal = null;
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    /// <summary>
    /// The journal could not be read: the service manager answers the requests it held for this coordinator with
    /// the reason (they would otherwise wait for a timeout) and starts it again with backoff.
    /// </summary>
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Error(reason, "{0}: could not recover from {1}", _name, _context.JournalLocation);
        Context.Parent.Tell(new ServiceManager.CoordinatorRecoveryFailed(_name,
            $"the coordinator of '{_name}' could not read its journal {_context.JournalLocation} ({Units.DiskFaults.Reason(reason)})"));
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>Runs work off the actor thread; its outcome comes back as WorkDone (or a rejection reply).</summary>
    private void RunAsync(Func<ServiceState, IActorRef, Task<WorkDone>> work)
    {
        var replyTo = Sender;
        var state = _state;
        Become(Busy);
        Task.Run(async () =>
        {
            try
            {
                return await work(state, replyTo);
            }
            catch (RequestRefused ex)
            {
                return Reject(replyTo, ex.Kind, ex.Message);
            }
            catch (PlacementRefusedException ex)
            {
                return new WorkDone([], ex.Rejection, replyTo);
            }
            catch (FormulaValidationException ex)
            {
                return Reject(replyTo, RejectionKind.InvalidFormula, ex.Message);
            }
            catch (BundleRejectedException ex)
            {
                return Reject(replyTo, RejectionKind.InvalidFormula, ex.Message);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Our own I/O errors name the path and the fix (formula storage).
                _log.Warning("{0}: request refused: {1}", _name, ex.Message);
                return Reject(replyTo, RejectionKind.Unavailable, ex.Message);
            }
            catch (Exception ex)
            {
                _log.Error(ex, "{0}: request failed", _name);
                return Reject(replyTo, RejectionKind.Unavailable,
                    $"the coordinator of '{_name}' could not complete the request ({ex.GetBaseException().Message}); see the controller's log");
            }
        }).PipeTo(Self);
    }

    /// <summary>The formula limits, with the revision limit an operator may have set.</summary>
    private FormulaLimits Limits => _context.FormulaLimits;

    private WorkDone Reject(IActorRef replyTo, RejectionKind kind, string reason) =>
        new([], new CommandRejected(_name, kind, reason), replyTo);

    /// <summary>Answers a request the rules refuse (<see cref="ServiceLogic.Check"/>); true when it was refused.</summary>
    private bool Refused(IServiceCommand command)
    {
        if (ServiceLogic.Check(_state, command, _context.Settings.RequestLimits) is not { } rejected) return false;
        Sender.Tell(rejected);
        return true;
    }

    // ---- deploy and units ----

    private void OnPrepareDeploy(PrepareDeploy m)
    {
        if (Refused(m)) return;
        AnswerPrepareDeploy(_context, m, Sender);
    }

    /// <summary>The answer to a deploy that passed the rules: prepared, unless its units have no machine to go on.</summary>
    internal static void AnswerPrepareDeploy(ControllerContext context, PrepareDeploy m, IActorRef replyTo) =>
        Machines.MachineDirectory.ReadAsync(context.Machines, context.Topology, TimeSpan.FromSeconds(5)).PipeTo(replyTo,
            success: machines => ServiceLogic.CheckPlacement(m.Service, m.To, machines, out _) is { } refused
                ? refused
                : new DeployPrepared(m.Service, context.Settings.RequestLimits.MaxRevision),
            failure: ex => new CommandRejected(m.Service, RejectionKind.Unavailable, $"the controller could not read its machines ({ex.GetBaseException().Message}); try again when the coordination store is back"));

    private void OnDeploy(DeployService m)
    {
        if (Refused(m)) return;
        RunAsync(async (state, replyTo) =>
        {
            if (await _context.Topology.GetServiceAsync(_name) is { Dying: true })
                return Reject(replyTo, RejectionKind.Conflict, await StillDyingAsync());
            // Where the units can go is settled before anything is recorded: a refusal changes nothing.
            var machines = await MachinesForAsync(m.To);
            var formulaRef = await RecordBundleAsync(m.Formula);
            // deploy --config: checked against the formula's options before the service exists; a refusal deploys nothing.
            var config = Configuration.ServiceConfig.Empty;
            if (m.Config is { Count: > 0 } pairs)
            {
                var options = (await _context.Topology.GetFormulaAsync(formulaRef.Id.ToString()))?.Options ?? [];
                switch (Configuration.ConfigValues.Decide(_name, options, new Dictionary<string, object>(), pairs))
                {
                    case Configuration.ConfigDecision.Refused refused:
                        return Reject(replyTo, RejectionKind.InvalidInput, refused.Reason + "; fix the --config file and deploy again");
                    case Configuration.ConfigDecision.Accepted accepted:
                        config = Configuration.ServiceConfig.Of(0, accepted.Values);
                        break;
                }
            }
            await _context.Topology.CreateServiceAsync(new ServiceRecord(_name, formulaRef.Id.ToString(), formulaRef.Sha256, m.Repository), config);
            await CreatePeerRelationsAsync(formulaRef);
            var events = new List<IServiceEvent> { new ServiceEvents.ServiceCreated(formulaRef, m.Repository) };
            var placed = await PlaceUnitsAsync(state with { Formula = formulaRef }, m.Units, machines, events);
            return new WorkDone(events, new ServiceReplies.ServiceDeployed(_name, formulaRef.Id, placed), replyTo);
        });
    }

    private void OnAddUnits(AddUnits m)
    {
        if (Refused(m)) return;
        RunAsync(async (state, replyTo) =>
        {
            var events = new List<IServiceEvent>();
            var placed = await PlaceUnitsAsync(state, m.Count, await MachinesForAsync(m.To), events);
            return new WorkDone(events, new UnitsAdded(_name, placed), replyTo);
        });
    }

    /// <summary>The machines new units may go on (<see cref="ServiceLogic.CheckPlacement"/>), or a refusal as <see cref="PlacementRefusedException"/>.</summary>
    private async Task<IReadOnlyList<string>> MachinesForAsync(string? to)
    {
        var machines = await Machines.MachineDirectory.ReadAsync(_context.Machines, _context.Topology, TimeSpan.FromSeconds(5));
        return ServiceLogic.CheckPlacement(_name, to, machines, out var candidates) is { } refused
            ? throw new PlacementRefusedException(refused)
            : candidates;
    }

    private sealed class PlacementRefusedException(CommandRejected rejection) : Exception(rejection.Reason)
    {
        public CommandRejected Rejection { get; } = rejection;
    }

    private async Task<IReadOnlyList<string>> PlaceUnitsAsync(ServiceState state, int count, IReadOnlyList<string> machines, List<IServiceEvent> events)
    {
        var agents = (await _context.Topology.ListAgentsAsync()).ToDictionary(a => a.Machine);
        var placed = ServiceLogic.PlanPlacement(state, count, machines);
        await _context.Topology.AddUnitsAsync(placed.Select(p =>
            new UnitRecord(p.Unit, state.Formula!.Id.ToString(), Units.UnitPhase.Pending, p.Machine, Sha256: state.Formula.Sha256)).ToList());
        foreach (var p in placed)
            if (agents.TryGetValue(p.Machine, out var agent))
                _system.ActorSelection(agent.Address).Tell(new UnitRequests.DeployUnit(p.Unit, state.Formula!));
        events.AddRange(placed);
        return placed.Select(p => p.Unit).ToList();
    }

    /// <summary>
    /// Removes a unit through its machine's agent (stop hook, files, data), then its record. A machine whose
    /// agent is down cannot remove anything: the unit is marked dying, leaves the service at once (no
    /// upgrade targets it), and is removed by that agent when it is back — the reply says so, never
    /// "removed" while its files remain.
    /// </summary>
    private void OnDestroyUnit(DestroyUnit m)
    {
        if (Refused(m)) return;
        var machine = _state.Units[m.Unit];
        RunAsync(async (_, replyTo) =>
        {
            var waiting = await RemoveUnitAsync(m.Unit, machine) ? null : machine;
            return new WorkDone([new ServiceEvents.UnitDeleted(m.Unit)], new ServiceReplies.UnitDestroyed(_name, m.Unit, waiting), replyTo);
        });
    }

    /// <summary>True when the unit is gone; false when it was marked dying because its machine's agent is down.</summary>
    private async Task<bool> RemoveUnitAsync(string unit, string machine)
    {
        if (await _context.Topology.GetAgentAsync(machine) is not { } agent)
        {
            await _context.Topology.MarkUnitDyingAsync(unit);
            _log.Warning("{0}: machine {1} is down; the unit will be removed when its agent is back", unit, machine);
            return false;
        }
        await _system.ActorSelection(agent.Address).Ask<UnitReplies.UnitRemoved>(new UnitRequests.RemoveUnit(unit), TimeSpan.FromMinutes(6));
        await _context.Topology.RemoveUnitAsync(unit);
        return true;
    }

    private void OnDestroyService(DestroyService m)
    {
        if (Refused(m)) return;
        RunAsync(async (state, replyTo) =>
        {
            // Its relations end first: every unit in them, on both sides, runs -departed and -broken.
            var relations = new Relations.RelationStore(_context.Topology);
            foreach (var relation in (await relations.ListAsync()).Where(r => r.Involves(_name) && !r.Dying))
                await relations.MarkDyingAsync(relation);
            var waiting = new List<string>();
            foreach (var (unit, machine) in state.Units)
                if (!await RemoveUnitAsync(unit, machine)) waiting.Add(unit);
            if (waiting.Count == 0) await _context.Topology.DeleteServiceAsync(_name);
            else await _context.Topology.MarkServiceDyingAsync(_name);
            return new WorkDone([new ServiceRemoved()], new ServiceReplies.ServiceDestroyed(_name, waiting.Count == 0 ? null : waiting), replyTo);
        });
    }

    /// <summary>A new service's peers relations, one per peers endpoint of its formula (made once: a redone deploy finds them).</summary>
    private async Task CreatePeerRelationsAsync(FormulaRef formula)
    {
        var endpoints = Relations.RelationManager.ForFormula(_name, await _context.Topology.GetFormulaAsync(formula.Id.ToString()));
        var relations = new Relations.RelationStore(_context.Topology);
        var existing = await relations.ListAsync();
        foreach (var (@interface, endpoint) in Relations.RelationMatching.Peers(endpoints))
            if (!existing.Any(r => !r.Dying && r.Endpoints.Count == 1 && r.Endpoints[0] == endpoint))
                await relations.CreateAsync(@interface, [endpoint]);
    }

    /// <summary>Why a destroyed service's name cannot be deployed again yet.</summary>
    private async Task<string> StillDyingAsync()
    {
        var waiting = (await _context.Topology.ListUnitsAsync(_name)).Select(u => $"{u.Name} (machine {u.Machine})").ToList();
        return $"service '{_name}' is still being destroyed: {string.Join(", ", waiting)} will be removed when {(waiting.Count == 1 ? "its machine is" : "their machines are")} back; "
            + "deploy it again after that, or under another name";
    }

    private void OnResolve(ResolveUnit m)
    {
        if (Refused(m)) return;
        var machine = _state.Units[m.Unit];
        var replyTo = Sender;
        var system = Context.System;
        var service = _name;
        _context.Topology.GetAgentAsync(machine).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully && t.Result is { } agent)
                system.ActorSelection(agent.Address).Tell(new UnitRequests.ResolveUnitError(m.Unit, m.Retry), replyTo);
            else
                replyTo.Tell(new CommandRejected(service, RejectionKind.Unavailable, $"the agent of machine {machine}, which hosts {m.Unit}, is not running; start it and try again"));
        }, TaskScheduler.Default);
    }

    // ---- upgrades ----

    private void OnPrepareUpgrade(PrepareUpgrade m)
    {
        if (Refused(m)) return;
        Sender.Tell(new UpgradePrepared(_name, _state.Formula!, m.Repository ?? _state.Repository!, _context.Settings.RequestLimits.MaxRevision));
    }

    private void OnUpgrade(UpgradeFormula m)
    {
        if (Refused(m)) return;
        RunAsync((state, replyTo) => PrepareUpgradeAsync(state, m, replyTo));
    }

    private async Task<WorkDone> PrepareUpgradeAsync(ServiceState state, UpgradeFormula m, IActorRef replyTo)
    {
        var repositoryRoot = m.Repository;
        var deployed = state.Formula!;
        var selected = m.Units ?? [.. state.Units.Keys];

        FormulaRef target;
        var bumped = false;
        if (m.Target is not { } uploaded || uploaded.Sha256 == deployed.Sha256)
        {
            // Units left behind by an earlier, halted upgrade still have somewhere to go.
            var lagging = await LaggingUnitsAsync(selected, deployed);
            if (lagging.Count == 0)
                return Reject(replyTo, RejectionKind.NoNewerRevision,
                    $"no newer revision of formula '{deployed.Id.Name}' in {repositoryRoot}: '{_name}' runs {deployed.Id} and the latest there is revision {m.LatestRevision} with the same content; change the formula first");
            selected = lagging;
            target = deployed;
        }
        else
        {
            if (m.DryRun) return new WorkDone([], new UpgradePlanned(_name, deployed.Id, uploaded.Id, selected, m.RevisionBumped), replyTo);
            target = await RecordBundleAsync(uploaded);
            bumped = m.RevisionBumped;
        }
        if (m.DryRun) return new WorkDone([], new UpgradePlanned(_name, deployed.Id, target.Id, selected, bumped), replyTo);

        var dropped = target == deployed ? [] : await MigrateConfigAsync(target);
        await _context.Topology.PutServiceAsync(new ServiceRecord(_name, target.Id.ToString(), target.Sha256, repositoryRoot));
        var runId = Guid.NewGuid().ToString("N")[..12];
        var began = new UpgradeBegan(runId, deployed, target, repositoryRoot, selected, m.MaxParallel ?? int.MaxValue);
        return new WorkDone([began], new UpgradeStarted(_name, deployed.Id, target.Id, selected, bumped,
            dropped.Count == 0 ? null : dropped.Select(d => d.ToString()).ToList()), replyTo);
    }

    /// <summary>
    /// Carries the set values over to the options of <paramref name="target"/> (<see cref="Configuration.ConfigValues.Migrate"/>);
    /// the ones it drops are removed from the store (a new version, so running units hear of it) and returned.
    /// </summary>
    private async Task<IReadOnlyList<Configuration.DroppedOption>> MigrateConfigAsync(FormulaRef target)
    {
        var options = (await _context.Topology.GetFormulaAsync(target.Id.ToString()))?.Options ?? [];
        var config = await _context.Topology.GetConfigAsync(_name);
        var (kept, dropped) = Configuration.ConfigValues.Migrate(options, config.Typed());
        if (dropped.Count > 0)
        {
            await _context.Topology.PutConfigAsync(_name, Configuration.ServiceConfig.Of(config.Version + 1, kept));
            _log.Info("{0}: the upgrade to {1} drops options {2}", _name, target.Id, string.Join(", ", dropped));
        }
        return dropped;
    }

    // ---- configuration ----

    /// <summary>
    /// `ensemble set`: checked against the options of the service's current formula; accepted, the store's configuration
    /// gets a new version, and every unit agent watching it runs config-changed. Setting what is already set changes nothing.
    /// </summary>
    private void OnSetConfig(SetConfig m)
    {
        if (Refused(m)) return;
        RunAsync(async (state, replyTo) =>
        {
            var options = await OptionsOfAsync(state);
            var config = await _context.Topology.GetConfigAsync(_name);
            switch (Configuration.ConfigValues.Decide(_name, options, config.Typed(), m.Pairs))
            {
                case Configuration.ConfigDecision.Refused refused:
                    return Reject(replyTo, RejectionKind.InvalidInput, refused.Reason);
                case Configuration.ConfigDecision.Accepted { Changed.Count: 0 }:
                    return new WorkDone([], new ConfigSet(_name, [], config.Version), replyTo);
                case Configuration.ConfigDecision.Accepted accepted:
                    var next = Configuration.ServiceConfig.Of(config.Version + 1, accepted.Values);
                    await _context.Topology.PutConfigAsync(_name, next);
                    _log.Info("{0}: configuration version {1} sets {2}", _name, next.Version, string.Join(", ", accepted.Changed));
                    return new WorkDone([], new ConfigSet(_name, accepted.Changed, next.Version), replyTo);
                default:
                    throw new InvalidOperationException("unknown configuration decision");
            }
        });
    }

    /// <summary>`ensemble get`: every option of the current formula, with its default and the value in effect.</summary>
    private void OnGetConfig(GetConfig m)
    {
        if (Refused(m)) return;
        RunAsync(async (state, replyTo) =>
        {
            var options = await OptionsOfAsync(state);
            var config = await _context.Topology.GetConfigAsync(_name);
            var values = config.Typed();
            var effective = Configuration.ConfigValues.Effective(options, values);
            var entries = options.OrderBy(o => o.Name, StringComparer.Ordinal)
                .Select(o => new ConfigEntry(o.Name, o.Type, o.Default, o.Description,
                    effective[o.Name] is { } value ? Configuration.ConfigValues.Render(value) : null, values.ContainsKey(o.Name)))
                .ToList();
            return new WorkDone([], new ConfigView(_name, state.Formula!.Id, config.Version, entries), replyTo);
        });
    }

    /// <summary>The options of the service's current formula; a record written before options were recorded has none.</summary>
    private async Task<IReadOnlyList<ConfigOption>> OptionsOfAsync(ServiceState state)
    {
        var formula = (await _context.Topology.GetServiceAsync(_name))?.Formula ?? state.Formula!.Id.ToString();
        return (await _context.Topology.GetFormulaAsync(formula))?.Options ?? [];
    }

    private async Task<List<string>> LaggingUnitsAsync(IEnumerable<string> units, FormulaRef formula)
    {
        var lagging = new List<string>();
        foreach (var unit in units)
            if (await _context.Topology.GetUnitAsync(unit) is { } record && record.Formula != formula.Id.ToString())
                lagging.Add(unit);
        return lagging;
    }

    /// <summary>A request refused for a reason found while it was worked on: nothing was changed.</summary>
    private sealed class RequestRefused(RejectionKind kind, string reason) : Exception(reason)
    {
        public RejectionKind Kind { get; } = kind;
    }

    /// <summary>
    /// Confirms that the uploaded bundle a request names is stored and holds the formula it claims (requests are
    /// untrusted too), then records it under its id in the store.
    /// </summary>
    /// <exception cref="RequestRefused">The bundle is not stored, or holds another formula, or an invalid one.</exception>
    private async Task<FormulaRef> RecordBundleAsync(FormulaRef formula)
    {
        var (inspected, refusal) = await Formulas.Transfer.StoredBundles.ConfirmAsync(_context.Storage, formula, Limits);
        if (refusal is { } refused) throw new RequestRefused(refused.Kind, refused.Reason);
        var metadata = inspected!.Metadata;
        await _context.Topology.PutFormulaAsync(new FormulaRecord(formula.Id.ToString(), formula.Sha256, formula.Sha256,
            metadata.Provides, metadata.Requires, metadata.Peers, inspected.Config));
        return formula;
    }

    private void LaunchMore()
    {
        if (_state.Upgrade is not { } run) return;
        var launches = ServiceLogic.NextLaunches(run);
        if (launches.Count == 0)
        {
            EndIfDone();
            return;
        }
        PersistAll(launches.Select(u => new UnitUpgradeLaunched(run.RunId, u)), e =>
        {
            Applied(e);
            SpawnSaga(run, e.Unit, fresh: true);
        });
    }

    private void SpawnSaga(UpgradeRun run, string unit, bool fresh = false)
    {
        var name = $"upgrade-{run.RunId}-{UnitNames.DirectoryName(unit)}";
        if (!Context.Child(name).IsNobody()) return;
        Context.Watch(Context.ActorOf(UpgradeSaga.Props(run.RunId, unit, _state.Units[unit], run.To, _context, fresh), name));
    }

    /// <summary>
    /// A watcher went away, or a saga stopped. A saga stops itself once its outcome is recorded; one that
    /// failed is stopped by <see cref="SupervisorStrategy"/> and started again here, asking the store how far it got.
    /// </summary>
    private void OnTerminated(Terminated t)
    {
        if (_watchers.Remove(t.ActorRef)) return;
        if (_state.Upgrade is not { } run || !t.ActorRef.Path.Name.StartsWith($"upgrade-{run.RunId}-", StringComparison.Ordinal)) return;
        var unit = run.InFlight.FirstOrDefault(u => t.ActorRef.Path.Name == $"upgrade-{run.RunId}-{UnitNames.DirectoryName(u)}");
        if (unit is null) return;
        // A saga that failed (its store read threw, say) would likely fail again at once if started again at once,
        // so it waits, longer each time (up to 10 s), until one reports.
        _sagaWait = Coordination.StoreTrouble.NextWait(_sagaWait);
        Timers.StartSingleTimer("respawn-" + unit, new RespawnSaga(run.RunId, unit), _sagaWait);
    }

    private sealed record RespawnSaga(string RunId, string Unit);

    private TimeSpan _sagaWait = TimeSpan.Zero;

    private void OnRespawnSaga(RespawnSaga m)
    {
        if (_state.Upgrade is { } run && run.RunId == m.RunId && run.InFlight.Contains(m.Unit)) SpawnSaga(run, m.Unit);
    }

    /// <summary>A failing saga is stopped, not restarted: its replacement starts over from what the store says.</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    /// <summary>
    /// A saga's outcome is journaled here, then the saga is told so and stops: from then on this journal (or its
    /// snapshot) is the one record of it, and the saga is never started again. A report already recorded (a saga
    /// started again repeats it) is acknowledged at once.
    /// </summary>
    private void OnSagaReport(UpgradeSaga.Report report)
    {
        if (_state.Upgrade is not { } run || run.RunId != report.RunId || !run.InFlight.Contains(report.Unit))
        {
            Sender.Tell(UpgradeSaga.ResultRecorded.Instance);
            return;
        }
        _sagaWait = TimeSpan.Zero;
        IServiceEvent e = report.Succeeded
            ? new UnitUpgradeSucceeded(run.RunId, report.Unit)
            : new ServiceEvents.UnitUpgradeFailed(run.RunId, report.Unit, report.Cause ?? "failed");
        var saga = Sender;
        Persist(e, _ =>
        {
            Applied(e);
            saga.Tell(UpgradeSaga.ResultRecorded.Instance);
            Broadcast(new UnitUpgradeProgressed(_name, report.Unit, report.Succeeded ? "upgraded" : $"failed: {report.Cause}"));
            LaunchMore();
        });
    }

    private void EndIfDone()
    {
        if (_state.Upgrade is not { } run || !run.Done) return;
        Persist(new UpgradeEnded(run.RunId), e =>
        {
            Applied(e);
            if (run.Halted && !run.Queued.IsEmpty)
                _log.Warning("{0}: upgrade to {1} halted after a failure; {2} units keep {3}", _name, run.To.Id, run.Queued.Count, run.From.Id);
            _lastView = UpgradeViews.Of(run, _steps, finished: true);
            _steps.Clear();
            Broadcast(new UpgradeFinished(_name, run.To.Id, [.. run.Succeeded], run.Failed, [.. run.Queued]));
        });
    }

    private void OnResume()
    {
        if (_state.Upgrade is not { } run) return;
        _log.Info("{0}: resuming the upgrade to {1}", _name, run.To.Id);
        foreach (var unit in run.InFlight) SpawnSaga(run, unit);
        LaunchMore();
    }

    private UpgradeStatus Status()
    {
        var run = _state.Upgrade;
        return new UpgradeStatus(_name, run?.To.Id ?? _state.Formula?.Id,
            run is null ? [] : [.. run.Queued], run is null ? [] : [.. run.InFlight], run is null ? [] : [.. run.Succeeded],
            run?.Failed ?? (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(), run is not null, run?.Halted ?? false,
            run is null ? new Dictionary<string, string>() : new Dictionary<string, string>(_steps),
            run is null ? _lastView : UpgradeViews.Of(run, _steps));
    }

    private void Broadcast(object message)
    {
        foreach (var watcher in _watchers) watcher.Tell(message);
    }
}
