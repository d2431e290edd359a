using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Hooks;
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
        _step = new UnitStepContext(unit, _paths, context, _log);
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
            if (!_stepRunning && !_configRunning) Sender.Tell(new Drained());
        });
        Configuration();
    }

    public static Props Props(string unit, AgentContext context) => Akka.Actor.Props.Create(typeof(UnitAgent), unit, context);

    protected override void PreStart()
    {
        BeginStep();
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
        RemoveAsync().PipeTo(replyTo, success: () => new UnitRemoved(_unit));
        Context.Stop(Self);

        async Task RemoveAsync()
        {
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
        // The start step ran config-changed for this configuration: recorded with the move to running.
        if (m.Step == UnitStep.Start && m.Failure is null && _step.DeliveredConfig.Value is { } delivered)
            _state = _state with { ConfigVersion = Math.Max(_state.ConfigVersion, delivered) };
        Offer(m.Failure is null ? UnitTrigger.Succeeded : new UnitTrigger.StepFailed(m.Failure));
        if (m.Step == UnitStep.Record && m.Failure is null) CompleteWaiters();
        if (_drainedReplyTo is not null && !_stepRunning) _drainedReplyTo.Tell(new Drained());
        DeliverConfigIfIdle();
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
        if (_stepRunning || _configRunning || _drainedReplyTo is not null) return;
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
