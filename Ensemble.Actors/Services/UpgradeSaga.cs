using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Topology;
using Ensemble.Units;
using static Ensemble.Units.UnitRequests;
using static Ensemble.Units.UnitReplies;

namespace Ensemble.Services;

/// <summary>
/// The upgrade of one unit, seen from the coordinator: flag the unit in the topology, tell its agent,
/// wait for the outcome with a deadline, report to the service. The saga journals nothing: the coordinator's
/// journal holds that the unit was launched and, once reported, its outcome; the store holds the rest. The flag
/// in the store is the one record of "this unit has an upgrade pending", and a saga started again after a crash
/// reads it (and the unit's formula) instead, so it never flags twice; its agent answers a repeated request with
/// what the unit already did (upgraded, or the error it stopped in), so a saga that had finished before the crash
/// learns its outcome again from the agent. What a crash before the coordinator journaled the outcome costs is a
/// second question to the agent (and a deadline counted again from the saga's new start), never a second upgrade.
/// (Sagas once journaled their outcome and deleted that journal after the coordinator had recorded it: two writes
/// per unit for a fact the coordinator keeps anyway, and the deletion, which Akka.Persistence.Sql runs outside its
/// write queue, raced the journal's single SQLite writer: docs/performance.md.)
/// </summary>
public sealed class UpgradeSaga : ReceiveActor, IWithTimers
{
    /// <summary>Sent to the parent service coordinator with the unit's outcome.</summary>
    public sealed record Report(string RunId, string Unit, bool Succeeded, string? Cause);

    /// <summary>The coordinator's answer to a <see cref="Report"/>: the outcome is in its journal, and the saga stops.</summary>
    public sealed class ResultRecorded
    {
        public static readonly ResultRecorded Instance = new();
    }

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
    /// <summary>True once the saga has reported an outcome (it then only waits for ResultRecorded).</summary>
    private bool _finished;
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

        Receive<FlagFound>(m =>
        {
            _flagged |= m.Flagged;
            Start();
        });
        Receive<FlagWritten>(_ =>
        {
            _flagging = false;
            _flagged = true;
            TellAgent();
        });
        Receive<FlagFailed>(m =>
        {
            _flagging = false;
            _log.Warning("saga {0}: could not flag the unit, retrying: {1}", _unit, m.Cause);
        });
        Receive<Resend>(_ =>
        {
            if (!_flagged) Flag();
            else TellAgent();
        });
        Receive<DeadlinePassed>(_ => Finish(false, $"no outcome within {_context.Settings.UnitUpgradeDeadline}"));
        Receive<UnitUpgraded>(m =>
        {
            if (m.Formula.Sha256 == _target.Sha256) Finish(true, null);
        });
        Receive<UnitEnteredError>(m => Finish(false, $"{UnitLifecycle.StateName(m.State)}: {m.Cause}"));
        Receive<UnitCommandRejected>(m => Finish(false, m.Reason));
        Receive<UnitProgressed>(m => Progress(UnitLifecycle.StateName(m.State)));
        Receive<MachineAway>(m =>
        {
            if (_away == m.Waiting) return;
            _away = m.Waiting;
            _log.Info("saga {0}: {1}", _unit, m.Waiting);
            Progress(m.Waiting);
        });
        // The machine is back: what the unit is doing now replaces "waiting for machine …".
        Receive<MachineBack>(m =>
        {
            if (_away is null) return;
            _away = null;
            Context.System.ActorSelection(m.AgentAddress).Tell(new GetUnitReport(_unit), Self);
        });
        Receive<UnitReport>(m =>
        {
            if (_away is null && m.Target?.Sha256 == _target.Sha256) Progress(UnitLifecycle.StateName(m.State));
        });
        Receive<ResultRecorded>(_ =>
        {
            if (_finished) Context.Stop(Self);
        });
    }

    protected override void PreStart() => Begin();

    // Props by type and arguments: the expression form compiles a delegate per call, one per unit upgrade.
    public static Props Props(string runId, string unit, string machine, FormulaRef target, ControllerContext context, bool fresh = false) =>
        Akka.Actor.Props.Create(typeof(UpgradeSaga), runId, unit, machine, target, context, fresh);

    private readonly bool _fresh;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>A fresh saga flags its unit; one started again after a crash first asks the store how far it got.</summary>
    private void Begin()
    {
        if (_fresh)
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
        if (_finished) return;
        Timers.CancelAll();
        _finished = true;
        Context.Parent.Tell(new Report(_runId, _unit, succeeded, cause));
    }
}
