using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Ensemble.Formulas;
using Ensemble.Serialization;
using Ensemble.Topology;
using Ensemble.Units;
using static Ensemble.Units.UnitRequests;
using static Ensemble.Units.UnitReplies;

namespace Ensemble.Services;

/// <summary>
/// The upgrade of one unit, seen from the coordinator: flag the unit in the topology, tell its agent,
/// wait for the outcome with a deadline, report to the service. The flag in the store is the one record
/// of "this unit has an upgrade pending": a saga started again after a crash reads it (and the unit's
/// formula) instead of journaling it, so it never flags twice. Only the outcome is journaled, so a
/// finished saga merely repeats its report. Once the coordinator has journaled the outcome (ResultRecorded)
/// the saga deletes its journal and stops: the coordinator never starts a saga for a unit whose outcome it
/// holds, so nothing reads it again, and a crash before the deletion leaves one event behind, never a rerun.
/// </summary>
public sealed class UpgradeSaga : ReceivePersistentActor, IWithTimers
{
    public static class Events
    {
        /// <summary>No longer written (the flag in the store says it); journals of earlier versions hold it, and it still means "flagged".</summary>
        public sealed record UnitFlagged(string Unit) : IPersistedEvent;

        public sealed record SagaFinished(string Unit, bool Succeeded, string? Cause) : IPersistedEvent;
    }

    /// <summary>Sent to the parent service coordinator once the outcome is journaled.</summary>
    public sealed record Report(string RunId, string Unit, bool Succeeded, string? Cause);

    /// <summary>The coordinator's answer to a <see cref="Report"/>: the outcome is in its journal.</summary>
    public sealed class ResultRecorded
    {
        public static readonly ResultRecorded Instance = new();
    }

    private sealed record Proceed;
    private sealed record FlagWritten;
    private sealed record FlagFailed(string Cause);
    private sealed record FlagFound(bool Flagged);
    private sealed record Resend;
    private sealed record DeadlinePassed;
    private sealed record MachineAway(string Waiting);
    private sealed record MachineBack(string AgentAddress);

    private readonly string _runId;
    private readonly string _unit;
    private readonly string _machine;
    private readonly FormulaRef _target;
    private readonly ControllerContext _context;
    private bool _flagged;
    private Events.SagaFinished? _finished;
    private bool _flagging;
    /// <summary>What the unit waits for while its machine's agent is away (shown as its progress), else null.</summary>
    private string? _away;

    public UpgradeSaga(string runId, string unit, string machine, FormulaRef target, ControllerContext context, bool fresh = false)
    {
        _fresh = fresh;
        _runId = runId;
        _unit = unit;
        _machine = machine;
        _target = target;
        _context = context;

        Recover<Events.UnitFlagged>(_ => _flagged = true);
        Recover<Events.SagaFinished>(e => _finished = e);
        Recover<RecoveryCompleted>(_ => Self.Tell(new Proceed()));

        Command<Proceed>(_ => OnProceed());
        Command<FlagFound>(m =>
        {
            _flagged |= m.Flagged;
            Start();
        });
        Command<FlagWritten>(_ =>
        {
            _flagging = false;
            _flagged = true;
            TellAgent();
        });
        Command<FlagFailed>(m =>
        {
            _flagging = false;
            _log.Warning("saga {0}: could not flag the unit, retrying: {1}", _unit, m.Cause);
        });
        Command<Resend>(_ =>
        {
            if (!_flagged) Flag();
            else TellAgent();
        });
        Command<DeadlinePassed>(_ => Finish(false, $"no outcome within {_context.Settings.UnitUpgradeDeadline}"));
        Command<UnitUpgraded>(m =>
        {
            if (m.Formula.Sha256 == _target.Sha256) Finish(true, null);
        });
        Command<UnitEnteredError>(m => Finish(false, $"{UnitLifecycle.StateName(m.State)}: {m.Cause}"));
        Command<UnitCommandRejected>(m => Finish(false, m.Reason));
        Command<UnitProgressed>(m => Progress(UnitLifecycle.StateName(m.State)));
        Command<MachineAway>(m =>
        {
            if (_away == m.Waiting) return;
            _away = m.Waiting;
            _log.Info("saga {0}: {1}", _unit, m.Waiting);
            Progress(m.Waiting);
        });
        // The machine is back: what the unit is doing now replaces "waiting for machine …".
        Command<MachineBack>(m =>
        {
            if (_away is null) return;
            _away = null;
            Context.System.ActorSelection(m.AgentAddress).Tell(new GetUnitReport(_unit), Self);
        });
        Command<UnitReport>(m =>
        {
            if (_away is null && m.Target?.Sha256 == _target.Sha256) Progress(UnitLifecycle.StateName(m.State));
        });
        Command<ResultRecorded>(_ =>
        {
            if (_finished is null) return;
            DeleteMessages(LastSequenceNr);
        });
        Command<DeleteMessagesSuccess>(_ => Context.Stop(Self));
        Command<DeleteMessagesFailure>(m =>
        {
            // Only space: the coordinator holds the outcome and never starts this saga again.
            _log.Warning("saga {0}: could not delete its journal: {1}", _unit, m.Cause.Message);
            Context.Stop(Self);
        });
    }

    // Props by type and arguments: the expression form compiles a delegate per call, one per unit upgrade.
    public static Props Props(string runId, string unit, string machine, FormulaRef target, ControllerContext context, bool fresh = false) =>
        Akka.Actor.Props.Create(typeof(UpgradeSaga), runId, unit, machine, target, context, fresh);

    private readonly bool _fresh;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>
    /// A saga its coordinator has just launched has nothing in its journal (run ids are new), so it skips
    /// replaying it: with a thousand units launched at once, those replays were most of the launch cost.
    /// A saga started again after a crash — by a recovering coordinator, or after it failed itself —
    /// always replays.
    /// </summary>
    public override Recovery Recovery => _fresh ? Recovery.None : base.Recovery;

    public static string PersistenceIdFor(string runId, string unit) => $"upgrade-{runId}-{UnitNames.DirectoryName(unit)}";

    public override string PersistenceId => PersistenceIdFor(_runId, _unit);

    public ITimerScheduler Timers { get; set; } = null!;

    private void OnProceed()
    {
        _log.Debug("saga {0}: recovered (flagged {1}, finished {2})", _unit, _flagged, _finished is not null);
        if (_finished is { } done)
        {
            SendReport(done);
            return;
        }
        if (_fresh || _flagged)
        {
            Start();
            return;
        }
        // Started again after a crash: the store says whether this unit was flagged already, or has even
        // finished (its flag cleared together with recording the target formula).
        var topology = _context.Topology;
        var unit = _unit;
        var target = _target;
        Task.Run(async () =>
            await topology.GetUpgradeFlagAsync(unit) is { } flag
                ? flag.Sha256 == target.Sha256
                : (await topology.GetUnitAsync(unit))?.Sha256 == target.Sha256)
            .PipeTo(Self, success: flagged => new FlagFound(flagged), failure: _ => new FlagFound(false));
    }

    private void Start()
    {
        Timers.StartPeriodicTimer("resend", new Resend(), _context.Settings.AgentResendInterval);
        Timers.StartSingleTimer("deadline", new DeadlinePassed(), _context.Settings.UnitUpgradeDeadline);
        if (_flagged) TellAgent();
        else Flag();
    }

    private void Flag()
    {
        if (_flagging) return;
        _flagging = true;
        _context.Topology.FlagUpgradeAsync(_unit, new UpgradeFlag(_target.Id.ToString(), _target.Sha256))
            .PipeTo(Self, success: () => new FlagWritten(), failure: ex => new FlagFailed(ex.Message));
    }

    private void Progress(string state) =>
        Context.Parent.Tell(new ServiceReplies.UnitUpgradeProgressed(UnitNames.ServiceOf(_unit), _unit, state));

    private void TellAgent()
    {
        var self = Self;
        var system = Context.System;
        var message = new UpgradeUnit(_unit, _target);
        var (topology, registry, machine) = (_context.Topology, _context.Machines, _machine);
        // The agent may be away (restarting, its host down or cut off): the periodic resend covers that, and
        // meanwhile the unit's progress says which machine it waits for, and since when.
        Task.Run(async () =>
        {
            if (await topology.GetAgentAsync(machine) is { } agent)
            {
                system.ActorSelection(agent.Address).Tell(message, self);
                return (object)new MachineBack(agent.Address);
            }
            Machines.MachineView? view = null;
            try { view = (await Machines.MachineDirectory.ReadAsync(registry, topology, TimeSpan.FromSeconds(5))).FirstOrDefault(v => v.Name == machine); }
            catch (Exception) { /* the registry did not answer: say what is known */ }
            return new MachineAway(WaitingFor(machine, view));
        }).PipeTo(self, failure: _ => new MachineAway($"waiting for machine {machine}: the store does not answer"));
    }

    /// <summary>"waiting for machine a1, down since 2026-11-27T13:02:11Z".</summary>
    public static string WaitingFor(string machine, Machines.MachineView? view) =>
        view is { Since: { } since, State: var state } && state != Machines.AgentState.Started
            ? $"waiting for machine {machine}, {Machines.AgentStates.Name(state)} since {since.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}"
            : $"waiting for machine {machine}, whose agent is down";

    private void Finish(bool succeeded, string? cause)
    {
        if (_finished is not null) return;
        Timers.CancelAll();
        Persist(new Events.SagaFinished(_unit, succeeded, cause), e =>
        {
            _finished = e;
            SendReport(e);
        });
    }

    /// <summary>Reports the outcome; the coordinator's ResultRecorded lets the saga delete its journal and stop.</summary>
    private void SendReport(Events.SagaFinished e) => Context.Parent.Tell(new Report(_runId, _unit, e.Succeeded, e.Cause));
}
