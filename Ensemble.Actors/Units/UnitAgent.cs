using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Hooks;
using Ensemble.Relations;
using Ensemble.Topology;
using Ensemble.Units.Steps;
using static Ensemble.Units.UnitRequests;
using static Ensemble.Units.UnitReplies;

namespace Ensemble.Units;

/// <summary>
/// Runs one unit's lifecycle on its machine: the executor of its steps. A thin shell around
/// <see cref="UnitLifecycle"/>: it persists every transition to the unit's state file before running the
/// new step (one <see cref="IUnitStep"/> per <see cref="UnitStep"/>, see <see cref="UnitSteps"/>), so a
/// restarted agent resumes — or idempotently redoes — the step it was in.
/// </summary>
public sealed class UnitAgent : ReceiveActor, IWithTimers
{
    public ITimerScheduler Timers { get; set; } = null!;

    private readonly string _unit;
    private readonly AgentContext _context;
    private readonly UnitPaths _paths;
    private readonly UnitStepContext _step;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<IActorRef> _waiting = [];
    private readonly Guid _incarnation = Guid.NewGuid();
    private CancellationTokenSource _stepCancellation = new();
    private UnitState _state;
    private long _stepSequence;
    private bool _stepRunning;
    private IActorRef? _drainedReplyTo;

    public UnitAgent(string unit, AgentContext context)
    {
        _unit = unit;
        _context = context;
        _paths = UnitPaths.For(context.UnitsDirectory, unit);
        _step = new UnitStepContext(unit, _paths, context, _log) { ToolData = config => HookData(null, config) };
        _state = UnitStateFile.Load(_paths) ?? UnitState.New(unit);
        Telemetry.EnsembleMetrics.Units.Track(Self, unit, () => _state.Phase);

        Receive<DeployUnit>(m => Offer(new UnitTrigger.Deploy(m.Formula), Sender));
        Receive<UpgradeUnit>(OnUpgrade);
        Receive<ResolveUnitError>(OnResolve);
        Receive<GetUnitReport>(_ => Sender.Tell(Status()));
        Receive<RemoveUnit>(OnRemove);
        Receive<StepFinished>(OnStepFinished);
        Receive<RetryStep>(m =>
        {
            if (m.Incarnation == _incarnation && m.Sequence == _stepSequence && !_stepRunning) BeginStep();
        });
        Receive<Drain>(_ =>
        {
            _drainedReplyTo = Sender;
            if (!_stepRunning && !_relationBusy && !_configRunning) Sender.Tell(new Drained());
        });
        Receive<RelationsSnapshot>(m =>
        {
            _relations = m;
            RefreshView();
            RunRelations();
        });
        Receive<OwnMembersLoaded>(OnOwnMembersLoaded);
        Receive<RelationDone>(OnRelationDone);
        Receive<RetryRelations>(m =>
        {
            if (m.Incarnation == _incarnation) RunRelations();
        });
        Configuration();
    }

    public static Props Props(string unit, AgentContext context) => Akka.Actor.Props.Create(typeof(UnitAgent), unit, context);

    protected override void PreStart()
    {
        BeginStep();
        Context.Parent.Tell(RelationsSnapshot.Request.Instance);
        WatchConfig();
    }

    protected override void PostStop()
    {
        // Kills a hook still running, so a restarted agent's re-run never overlaps it.
        _stepCancellation.Cancel();
        _stepCancellation.Dispose();
    }

    private UnitReport Status() =>
        new(_unit, _state.Phase, _state.Current, _state.Target, _state.Error);

    private void OnUpgrade(UpgradeUnit m)
    {
        var decision = UnitLifecycle.Decide(_state, new UnitTrigger.Upgrade(m.Formula));
        switch (decision)
        {
            case UnitDecision.Rejected when !_state.IsError && _state.Operation == UnitOperation.Deploy:
                // Still being deployed: the requester keeps asking and the upgrade begins once the unit runs.
                Sender.Tell(new UnitProgressed(_unit, _state.Phase, _state.Target));
                return;
            case UnitDecision.Rejected r:
                Sender.Tell(_state.IsError && _state.Target?.Sha256 == m.Formula.Sha256
                    ? new UnitEnteredError(_unit, _state.Phase, _state.Error ?? r.Reason)
                    : new UnitCommandRejected(_unit, r.Reason));
                return;
            case UnitDecision.Unchanged when _state.Operation == UnitOperation.None:
                Sender.Tell(new UnitUpgraded(_unit, _state.Current!));
                return;
            default:
                _waiting.Add(Sender);
                Apply(decision);
                return;
        }
    }

    private void OnResolve(ResolveUnitError m)
    {
        if (ResolveConfigFailure(m)) return;
        if (_relationError is not null && !_state.IsError)
        {
            ResolveRelationError(m.Retry);
            return;
        }
        var decision = UnitLifecycle.Decide(_state, new UnitTrigger.Resolve(m.Retry));
        if (decision is UnitDecision.Rejected r)
        {
            Sender.Tell(new UnitCommandRejected(_unit, r.Reason));
            return;
        }
        Apply(decision);
        Sender.Tell(new UnitResolved(_unit, _state.Phase));
    }

    private void OnRemove(RemoveUnit m)
    {
        _stepCancellation.Cancel();
        var replyTo = Sender;
        var formula = _state.Current;
        var running = _state.Phase == UnitPhase.Running && formula is not null;
        var paths = _paths;
        var step = _step;
        var unit = _unit;
        var hooks = _context.Hooks;
        var tools = _context.Tools;
        var view = _view;

        // The relation hooks of a unit being removed, with its hook tools (the machine's, so they outlive this actor).
        async Task<HookResult> LeavingHookAsync(RelationAction.Hook hook, string relationId)
        {
            var context = step.HookContextFor(formula!);
            if (tools is null)
            {
                var environment = new Dictionary<string, string> { ["ENSEMBLE_RELATION"] = hook.Name, ["ENSEMBLE_RELATION_ID"] = relationId };
                if (hook.Remote is not null) environment["ENSEMBLE_REMOTE_UNIT"] = hook.Remote;
                return await hooks.RunAsync(hook.HookName, context with { Environment = environment }, CancellationToken.None);
            }
            var data = new UnitHookData(unit, tools.Address, view.Snapshot, view.Own, await step.ConfigAsync(), hook);
            var scope = new Hooks.Tools.RelationHookScope(hook.RelationId, hook.Name, hook.Remote);
            return (await tools.RunAsync(hooks, hook.HookName, context, data, scope, CancellationToken.None)).Result;
        }
        var relations = RelationStore;
        var log = _log;
        RemoveAsync().PipeTo(replyTo, success: () => new UnitRemoved(_unit));
        Context.Stop(Self);


        async Task RemoveAsync()
        {
            // Out of its relations first: -departed for each remote unit it knew, then -broken; the remote units see it go.
            await LeaveRelationsAsync(unit, relations, running ? LeavingHookAsync : null, log);
            if (running)
                await _context.Hooks.RunAsync("stop", step.HookContextFor(formula!), CancellationToken.None);
            if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true);
        }
    }

    private void Offer(UnitTrigger trigger, IActorRef? replyTo = null)
    {
        var decision = UnitLifecycle.Decide(_state, trigger);
        if (decision is UnitDecision.Rejected r && replyTo is not null && !replyTo.IsNobody())
            replyTo.Tell(new UnitCommandRejected(_unit, r.Reason));
        Apply(decision);
    }

    private void Apply(UnitDecision decision)
    {
        if (decision is not UnitDecision.Moved moved) return;
        var previous = _state;
        _state = Persist(moved.State);
        if (previous.Phase != _state.Phase) _log.Info("{0}: {1} -> {2}", _unit, UnitLifecycle.StateName(previous.Phase), UnitLifecycle.StateName(_state.Phase));
        Notify(previous);
        BeginStep();
    }

    /// <summary>
    /// Saves the state entered before its step's work begins. When the unit's directory cannot be written
    /// (read-only, full, gone), the step cannot be carried out safely: the unit enters that step's error
    /// state in memory and in the shared topology — where status shows it — and waits there for
    /// `resolved --retry`, instead of crashing and being restarted over and over. The state file keeps the
    /// last step it could record, which a restarted agent redoes (every step can be redone).
    /// </summary>
    private UnitState Persist(UnitState next)
    {
        try
        {
            UnitStateFile.Save(_paths, next);
            return next;
        }
        catch (Exception ex) when (DiskFaults.IsDiskFault(ex))
        {
            var cause = DiskFaults.Describe($"cannot record the unit's state in {_paths.StateFile}", ex, _paths.Root, _unit);
            _log.Error("{0}: {1}", _unit, cause);
            return !next.IsError && UnitLifecycle.Decide(next, new UnitTrigger.StepFailed(cause)) is UnitDecision.Moved failed
                ? failed.State
                : next;
        }
    }

    /// <summary>Tells those waiting on an upgrade how it goes, and records errors in the shared topology.</summary>
    private void Notify(UnitState previous)
    {
        var state = _state.Phase;
        if (_state.IsError)
        {
            Publish(state, _state.Error);
            foreach (var waiter in _waiting) waiter.Tell(new UnitEnteredError(_unit, state, _state.Error ?? UnitLifecycle.StateName(state)));
            _waiting.Clear();
            return;
        }
        if (previous.IsError || (_state.Operation == UnitOperation.Deploy && previous.Phase != _state.Phase))
            Publish(state, null);
        // Resolved without retry after a failed download: the upgrade is abandoned, so is its flag.
        if (previous is { IsError: true, Operation: UnitOperation.Upgrade } && _state.Operation == UnitOperation.None)
            _ = _context.Topology.ClearUpgradeFlagAsync(_unit);
        if (previous.Phase == _state.Phase) return;
        foreach (var waiter in _waiting) waiter.Tell(new UnitProgressed(_unit, state, _state.Target));
    }

    private void Publish(UnitPhase state, string? error) =>
        _context.Topology.SetUnitStateAsync(_unit, state, error).ContinueWith(
            t => _log.Warning("{0}: could not record state {1}: {2}", _unit, UnitLifecycle.StateName(state), t.Exception?.GetBaseException().Message),
            TaskContinuationOptions.OnlyOnFaulted);

    // ---- steps ----

    private sealed record StepFinished(Guid Incarnation, long Sequence, UnitStep Step, string? Failure, Exception? Crash);

    private sealed record RetryStep(Guid Incarnation, long Sequence);

    private TimeSpan _storeBackoff = TimeSpan.Zero;

    private void BeginStep()
    {
        var step = UnitLifecycle.StepFor(_state);
        if (step == UnitStep.None) return;
        // One hook at a time: a step due while config-changed runs begins when it has finished.
        if (_configRunning) return;
        // Shutting down: the step is persisted as current and will run when the agent starts again.
        if (_drainedReplyTo is not null) return;
        // Hooks of one unit never overlap: the step waits for the relation hook running now.
        if (_relationBusy)
        {
            _stepDeferred = true;
            return;
        }

        var sequence = ++_stepSequence;
        var state = _state;
        var token = _stepCancellation.Token;
        _stepRunning = true;
        _context.Steps[step].RunAsync(_step, state, token).PipeTo(Self,
            success: failure => new StepFinished(_incarnation, sequence, step, failure, null),
            failure: ex => new StepFinished(_incarnation, sequence, step, null, ex));
    }

    private void OnStepFinished(StepFinished m)
    {
        if (m.Incarnation != _incarnation || m.Sequence != _stepSequence) return;
        _stepRunning = false;
        if (m.Crash is not null)
        {
            if (m.Crash is OperationCanceledException) return;
            // A disk that refuses the step's files fails the step (its error state, with the path), rather
            // than crashing the agent into a restart that would meet the same disk.
            if (DiskFaults.IsDiskFault(m.Crash) && UnitLifecycle.CanFail(_state))
            {
                var cause = DiskFaults.Describe($"{UnitLifecycle.StateName(_state.Phase)} failed", m.Crash, _paths.Root, _unit);
                _log.Error("{0}: {1}", _unit, cause);
                Offer(new UnitTrigger.StepFailed(cause));
                return;
            }
            // The store out of reach (connection lost, session being replaced): the step waits it out with
            // backoff and is run again — not a crash, so a long outage is no restart storm that parks the unit.
            if (Coordination.StoreTrouble.IsTransient(m.Crash))
            {
                _storeBackoff = Coordination.StoreTrouble.NextWait(_storeBackoff);
                _log.Warning("{0}: {1} cannot reach the store ({2}); trying again in {3:0.##} s",
                    _unit, UnitLifecycle.StateName(_state.Phase), m.Crash.GetBaseException().Message, _storeBackoff.TotalSeconds);
                Timers.StartSingleTimer("retry-step", new RetryStep(_incarnation, m.Sequence), _storeBackoff);
                if (_drainedReplyTo is not null) _drainedReplyTo.Tell(new Drained());
                return;
            }
            // An unexpected failure: crash, and let the supervisor restart us from the persisted step.
            throw new UnitAgentException($"{_unit}: step {m.Step} failed unexpectedly", m.Crash);
        }
        _storeBackoff = TimeSpan.Zero;
        // A lifecycle hook may have written relation settings (relation-set -r): read this unit's members again.
        _own.Clear();
        // The start step ran config-changed for this configuration: recorded with the move to running.
        if (m.Step == UnitStep.Start && m.Failure is null && _step.DeliveredConfig.Value is { } delivered)
            _state = _state with { ConfigVersion = Math.Max(_state.ConfigVersion, delivered) };
        Offer(m.Failure is null ? UnitTrigger.Succeeded : new UnitTrigger.StepFailed(m.Failure));
        if (m.Step == UnitStep.Record && m.Failure is null) CompleteWaiters();
        if (_drainedReplyTo is not null && !_stepRunning) _drainedReplyTo.Tell(new Drained());
        DeliverConfigIfIdle();
        RunRelations();
    }

    // ---- relations ----

    /// <summary>A removed unit leaves every relation it is in; a failing hook is logged and the removal goes on.</summary>
    private static async Task LeaveRelationsAsync(string unit, RelationStore store, Func<RelationAction.Hook, string, Task<HookResult>>? runHook, ILoggingAdapter log)
    {
        var service = UnitNames.ServiceOf(unit);
        foreach (var relation in (await store.ListAsync()).Where(r => r.Involves(service)))
        {
            if (await store.GetMemberAsync(relation.Id, unit) is not { } me) continue;
            var name = relation.EndpointOf(service)!.Name;
            if (runHook is not null)
            {
                foreach (var remote in me.Seen.Keys.Order(UnitOrder.Instance))
                {
                    var result = await runHook(new RelationAction.Hook(relation.Id, name, RelationHookKind.Departed, remote, 0), relation.IdFor(service));
                    if (!result.Succeeded) log.Warning("{0}: while removed: {1}", unit, result.Describe());
                }
                var broken = await runHook(new RelationAction.Hook(relation.Id, name, RelationHookKind.Broken, null, 0), relation.IdFor(service));
                if (!broken.Succeeded) log.Warning("{0}: while removed: {1}", unit, broken.Describe());
            }
            await store.LeaveAsync(relation.Id, unit);
        }
    }

    private RelationsSnapshot _relations = RelationsSnapshot.Empty;

    /// <summary>This unit's member per relation as it last wrote it (null: not in it). The snapshot's copy may lag behind.</summary>
    private readonly Dictionary<int, RelationMember?> _own = new();

    private bool _relationBusy;
    private bool _stepDeferred;
    private RelationFailure? _relationError;
    private TimeSpan _relationBackoff = TimeSpan.Zero;

    /// <summary>A relation hook that failed: the unit's relations wait until it is resolved.</summary>
    private sealed record RelationFailure(RelationAction.Hook Hook, string Cause);

    private sealed record OwnMembersLoaded(IReadOnlyDictionary<int, RelationMember?> Members);

    private sealed record RelationDone(RelationAction? Action, RelationMember? After, string? Failure, Exception? Crash, bool Resolved = false)
    {
        /// <summary>Other relations the hook wrote to with relation-set -r, as committed.</summary>
        public IReadOnlyDictionary<int, RelationMember>? Others { get; init; }
    }

    private sealed record RetryRelations(Guid Incarnation);

    private RelationStore RelationStore => new(_context.Topology);

    /// <summary>
    /// Runs what the unit's relations have to be told next, one hook at a time and never beside a lifecycle step.
    /// Relations run only while the unit is running with no operation: during an upgrade (or install, or an error)
    /// they are stopped, and whatever changed meanwhile is delivered, collapsed, once they run again.
    /// </summary>
    private void RunRelations()
    {
        if (_relationBusy || _stepRunning || _configRunning || _relationError is not null || _drainedReplyTo is not null) return;
        if (_state.Phase != UnitPhase.Running || _state.Operation != UnitOperation.None) return;
        var service = UnitNames.ServiceOf(_unit);
        var unknown = _relations.Relations.Values.Where(v => v.Record.Involves(service) && !_own.ContainsKey(v.Record.Id)).Select(v => v.Record.Id).ToList();
        _relationBusy = true;
        if (unknown.Count > 0)
        {
            // What this unit wrote before (another incarnation of this agent) is read from the store, never from a
            // snapshot that may predate its last write: a hook is not run twice for one change.
            LoadOwnMembersAsync(unknown).PipeTo(Self, success: d => new OwnMembersLoaded(d), failure: ex => new RelationDone(null, null, null, ex));
            return;
        }
        var action = RelationSchedule.Next(_unit, _relations, id => _own.GetValueOrDefault(id));
        if (action is null)
        {
            _relationBusy = false;
            return;
        }
        var token = _stepCancellation.Token;
        switch (action)
        {
            case RelationAction.Enter enter:
                var entering = RelationMember.Entering(_unit);
                RelationStore.EnterAsync(enter.RelationId, _unit).PipeTo(Self,
                    success: () => new RelationDone(enter, entering, null, null),
                    failure: ex => new RelationDone(enter, null, null, ex));
                break;
            case RelationAction.Hook hook:
                RunRelationHookAsync(hook, _own[hook.RelationId]!, token).PipeTo(Self, failure: ex => new RelationDone(hook, null, null, ex));
                break;
        }
    }

    private async Task<IReadOnlyDictionary<int, RelationMember?>> LoadOwnMembersAsync(IReadOnlyList<int> relations)
    {
        var store = RelationStore;
        var members = new Dictionary<int, RelationMember?>();
        foreach (var id in relations) members[id] = await store.GetMemberAsync(id, _unit);
        return members;
    }

    private void OnOwnMembersLoaded(OwnMembersLoaded m)
    {
        foreach (var (id, member) in m.Members) _own.TryAdd(id, member);
        RefreshView();
        _relationBusy = false;
        RunRelations();
    }

    /// <summary>Runs one relation hook; on exit 0 commits its settings and what the unit was told in one store write.</summary>
    private async Task<RelationDone> RunRelationHookAsync(RelationAction.Hook hook, RelationMember me, CancellationToken token)
    {
        var relation = _relations.Relations[hook.RelationId].Record;
        var service = UnitNames.ServiceOf(_unit);
        var formula = _state.Current!;
        var scope = new Hooks.Tools.RelationHookScope(hook.RelationId, hook.Name, hook.Remote);
        var context = _step.HookContextFor(formula);
        HookResult result;
        IReadOnlyDictionary<int, IReadOnlyDictionary<string, string?>> writes;
        if (_context.Tools is { } tools)
        {
            var config = await _step.ConfigAsync();
            var outcome = await tools.RunAsync(_context.Hooks, hook.HookName, context, HookData(hook, config), scope, token);
            (result, writes) = (outcome.Result, outcome.Writes);
        }
        else
        {
            var environment = new Dictionary<string, string> { ["ENSEMBLE_RELATION"] = hook.Name, ["ENSEMBLE_RELATION_ID"] = relation.IdFor(service) };
            if (hook.Remote is not null) environment["ENSEMBLE_REMOTE_UNIT"] = hook.Remote;
            result = await _context.Hooks.RunAsync(hook.HookName, context with { Environment = environment }, token);
            writes = new Dictionary<int, IReadOnlyDictionary<string, string?>>();
        }
        if (!result.Succeeded)
            return new RelationDone(hook, null, $"{result.Describe()} (relation {relation.IdFor(service)}{(hook.Remote is null ? "" : $", remote unit {hook.Remote}")})", null);
        var others = await RelationSettings.CommitWritesAsync(RelationStore, _unit, writes, except: hook.RelationId);
        return await CommitAsync(hook, me, writes.GetValueOrDefault(hook.RelationId)) with { Others = others };
    }

    /// <summary>What the unit's hook tools see in a hook starting now (read on the hook's thread: an immutable view).</summary>
    private Hooks.Tools.IHookToolData HookData(RelationAction.Hook? hook, IReadOnlyDictionary<string, object?> config)
    {
        var view = _view;
        return new UnitHookData(_unit, _context.Tools?.Address ?? "127.0.0.1", view.Snapshot, view.Own, config, hook);
    }

    /// <summary>The relations as the actor last knew them, for hook tools on other threads.</summary>
    private sealed record HookView(RelationsSnapshot Snapshot, IReadOnlyDictionary<int, RelationMember?> Own);

    private volatile HookView _view = new(RelationsSnapshot.Empty, new Dictionary<int, RelationMember?>());

    private void RefreshView() => _view = new HookView(_relations, new Dictionary<int, RelationMember?>(_own));

    private async Task<RelationDone> CommitAsync(RelationAction.Hook hook, RelationMember me, IReadOnlyDictionary<string, string?>? writes, bool resolved = false)
    {
        var after = RelationSchedule.AfterHook(me, hook, writes);
        if (after is null) await RelationStore.LeaveAsync(hook.RelationId, _unit);
        else await RelationStore.CommitAsync(hook.RelationId, after);
        return new RelationDone(hook, after, null, null, resolved);
    }

    private void OnRelationDone(RelationDone m)
    {
        _relationBusy = false;
        if (m.Crash is not null)
        {
            if (m.Crash.GetBaseException() is OperationCanceledException) return;
            // The store out of reach: nothing was committed; the same hook comes again after a wait.
            _relationBackoff = Coordination.StoreTrouble.NextWait(_relationBackoff);
            _log.Warning("{0}: relations wait for the store ({1}); trying again in {2:0.##} s", _unit, m.Crash.GetBaseException().Message, _relationBackoff.TotalSeconds);
            Timers.StartSingleTimer("retry-relations", new RetryRelations(_incarnation), _relationBackoff);
        }
        else if (m.Failure is not null && m.Action is RelationAction.Hook failed)
        {
            _relationError = new RelationFailure(failed, m.Failure);
            _log.Error("{0}: {1}", _unit, m.Failure);
            Publish(_state.Phase, $"{m.Failure}; fix it, then run 'ensemble resolved --retry {_unit}'");
        }
        else if (m.Action is not null)
        {
            _relationBackoff = TimeSpan.Zero;
            _own[m.Action.RelationId] = m.After;
            foreach (var (id, member) in m.Others ?? new Dictionary<int, RelationMember>()) _own[id] = member;
            RefreshView();
            if (m.Resolved) Publish(_state.Phase, null);
        }
        if (_drainedReplyTo is not null) _drainedReplyTo.Tell(new Drained());
        if (_stepDeferred)
        {
            _stepDeferred = false;
            BeginStep();
            return;
        }
        DeliverConfigIfIdle();
        RunRelations();
    }

    /// <summary>
    /// resolved --retry runs the failed relation hook again; resolved alone counts it as done (what it was told moves
    /// on, its settings writes are dropped) and the relations go on.
    /// </summary>
    private void ResolveRelationError(bool retry)
    {
        var failure = _relationError!;
        _relationError = null;
        Sender.Tell(new UnitResolved(_unit, _state.Phase));
        if (retry)
        {
            Publish(_state.Phase, null);
            RunRelations();
            return;
        }
        if (_relationBusy || _own.GetValueOrDefault(failure.Hook.RelationId) is not { } me) return;
        _relationBusy = true;
        CommitAsync(failure.Hook, me, writes: null, resolved: true).PipeTo(Self, failure: ex => new RelationDone(failure.Hook, null, null, ex));
    }

    // ---- configuration ----

    /// <summary>The service's configuration node holds this version (learnt from its store watch).</summary>
    public sealed record ConfigChanged(int Version);

    private sealed record ConfigWatchFired;

    /// <summary>The store session was replaced, and its watches went with it: read the configuration again and re-arm.</summary>
    public sealed record ConfigWatchLost
    {
        public static readonly ConfigWatchLost Instance = new();
    }

    private sealed record ConfigWatchFailed(Exception Cause);

    private sealed record ConfigDelivered(int Version, string? Failure);

    /// <summary>The newest configuration version the store showed; the unit's state says which one it has delivered.</summary>
    private int _configKnown;
    private bool _configRunning;
    private bool _configWatchArmed;
    /// <summary>A version whose config-changed failed while running: not run again until resolved, or a newer version.</summary>
    private int? _configFailed;
    private TimeSpan _configWatchBackoff = TimeSpan.Zero;

    private void Configuration()
    {
        Receive<ConfigChanged>(m =>
        {
            _configWatchBackoff = TimeSpan.Zero;
            _configKnown = Math.Max(_configKnown, m.Version);
            _step.KnownConfig.Value = _configKnown;
            DeliverConfigIfIdle();
        });
        Receive<ConfigWatchFired>(_ =>
        {
            _configWatchArmed = false;
            WatchConfig();
        });
        Receive<ConfigWatchLost>(_ =>
        {
            _configWatchArmed = false;
            WatchConfig();
        });
        Receive<ConfigWatchFailed>(m =>
        {
            _configWatchArmed = false;
            _configWatchBackoff = Coordination.StoreTrouble.NextWait(_configWatchBackoff);
            _log.Warning("{0}: cannot read the service's configuration ({1}); trying again in {2:0.##} s",
                _unit, m.Cause.GetBaseException().Message, _configWatchBackoff.TotalSeconds);
            Timers.StartSingleTimer("config-watch", new ConfigWatchFired(), _configWatchBackoff);
        });
        Receive<ConfigDelivered>(OnConfigDelivered);
    }

    /// <summary>
    /// Reads the service's configuration node and arms a one-shot store watch on it; each fire reads it again (and so
    /// re-arms). One watch per unit agent: it needs nothing from the machine agent, and ZooKeeper keeps one watch per
    /// path and session however many are armed.
    /// </summary>
    private void WatchConfig()
    {
        if (_configWatchArmed) return;
        _configWatchArmed = true;
        var self = Self;
        _context.Topology.GetConfigAsync(UnitNames.ServiceOf(_unit), _ => self.Tell(new ConfigWatchFired()))
            .PipeTo(Self, success: config => new ConfigChanged(config.Version), failure: ex => new ConfigWatchFailed(ex));
    }

    /// <summary>
    /// Runs config-changed for a configuration the unit has not had yet, when the unit runs with nothing else to do
    /// (no operation, no step); otherwise the check is made again when the step finishes. Deploys and upgrades deliver
    /// the configuration in their start step.
    /// </summary>
    private void DeliverConfigIfIdle()
    {
        if (_stepRunning || _configRunning || _relationBusy || _drainedReplyTo is not null) return;
        if (_state.Phase != UnitPhase.Running || _state.Operation != UnitOperation.None || _state.Current is null) return;
        var version = _configKnown;
        if (version <= _state.ConfigVersion || _configFailed == version) return;
        _configRunning = true;
        _log.Info("{0}: running config-changed for configuration version {1}", _unit, version);
        _step.HookAsync(Steps.StartStep.ConfigChangedHook, _state.Current, null, _stepCancellation.Token).PipeTo(Self,
            success: failure => new ConfigDelivered(version, failure),
            failure: ex => new ConfigDelivered(version, ex is OperationCanceledException ? "cancelled: the unit agent is stopping" : ex.GetBaseException().Message));
    }

    /// <summary>
    /// config-changed ran. A failure leaves the unit running (what it runs did not change) with the cause as its error
    /// in the store, until `resolved --retry` runs the hook again, `resolved` accepts it, or a newer configuration comes.
    /// </summary>
    private void OnConfigDelivered(ConfigDelivered m)
    {
        _configRunning = false;
        if (m.Failure is null)
        {
            var hadFailed = _configFailed is not null;
            _configFailed = null;
            _state = Persist(_state with { ConfigVersion = Math.Max(_state.ConfigVersion, m.Version) });
            if (hadFailed && !_state.IsError) Publish(_state.Phase, null);
        }
        else
        {
            _configFailed = m.Version;
            var cause = $"config-changed failed: {m.Failure}; fix the formula or the configuration, then run 'ensemble resolved --retry {_unit}'";
            _log.Error("{0}: {1}", _unit, cause);
            Publish(_state.Phase, cause);
        }
        if (_drainedReplyTo is not null)
        {
            _drainedReplyTo.Tell(new Drained());
            return;
        }
        BeginStep();
        DeliverConfigIfIdle();
        RunRelations();
    }

    /// <summary>`resolved` on a unit whose config-changed failed while running: --retry runs it again, without accepts the failure.</summary>
    private bool ResolveConfigFailure(ResolveUnitError m)
    {
        if (_configFailed is not { } failed || _state.IsError) return false;
        _configFailed = null;
        if (!m.Retry) _state = Persist(_state with { ConfigVersion = Math.Max(_state.ConfigVersion, failed) });
        Publish(_state.Phase, null);
        Sender.Tell(new UnitResolved(_unit, _state.Phase));
        DeliverConfigIfIdle();
        return true;
    }

    private void CompleteWaiters()
    {
        if (_state.Current is null) return;
        foreach (var waiter in _waiting) waiter.Tell(new UnitUpgraded(_unit, _state.Current));
        _waiting.Clear();
    }
}

/// <summary>A unit agent met something it does not know how to handle; its supervisor restarts it from its persisted step.</summary>
public sealed class UnitAgentException(string message, Exception inner) : Exception(message, inner);
