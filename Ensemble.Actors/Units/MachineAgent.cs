using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Topology;
using static Ensemble.Units.UnitRequests;
using static Ensemble.Units.UnitReplies;

namespace Ensemble.Units;

/// <summary>
/// The agent of one machine: announces itself in the topology (an ephemeral presence node carrying its
/// address), hosts a <see cref="UnitAgent"/> per unit placed on the machine and routes unit messages to them.
/// </summary>
public sealed class MachineAgent : ReceiveActor, IWithTimers
{
    public ITimerScheduler Timers { get; set; } = null!;

    private readonly AgentContext _context;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, string> _units = new();
    private readonly HashSet<string> _removing = [];
    private string _lastFailure = "";

    public MachineAgent(AgentContext context)
    {
        _context = context;
        ReceiveAsync<Started>(_ => OnStartedAsync());
        Receive<AnnounceFailed>(OnAnnounceFailed);
        Receive<AnnounceAgain>(_ => Announce());
        // A new store session: the old one's presence node is gone with it; announce again and adopt again.
        Receive<StoreSessionRenewed>(_ =>
        {
            _log.Warning("machine {0}: new store session; announcing this agent again", _context.Machine);
            _announceBackoff = TimeSpan.Zero;
            Announce();
            Context.Child(RelationWatcherName).Tell(Relations.RelationWatcher.ReadAgain.Instance);
            foreach (var unitAgent in _units.Keys) unitAgent.Tell(UnitAgent.ConfigWatchLost.Instance);
        });
        // The relations as the store has them now: every unit agent works out what its own units must be told.
        Receive<Relations.RelationsSnapshot>(m =>
        {
            _relations = m;
            foreach (var unitAgent in _units.Keys) unitAgent.Tell(m);
        });
        Receive<Relations.RelationsSnapshot.Request>(_ => Sender.Tell(_relations));
        Receive<RemoveUnit>(m =>
        {
            _removing.Add(m.Unit);
            Route(m);
        });
        // The log is a file of the machine's: read here, whether or not the unit's agent runs.
        Receive<ReadUnitLog>(m => Sender.Tell(UnitLogReader.Read(m.Unit, UnitPaths.For(_context.UnitsDirectory, m.Unit).LogPath, m.From, m.Tail)));
        Receive<IUnitMessage>(Route);
        Receive<Drain>(_ =>
        {
            // The unit agents only: the relation watcher runs no hooks.
            var children = _units.Keys.ToList();
            var timeout = _context.Settings.HookTimeout + TimeSpan.FromSeconds(10);
            Task.WhenAll(children.Select(c => c.Ask<Drained>(new Drain(), timeout)))
                .PipeTo(Sender, success: () => new Drained());
        });
        Receive<Terminated>(OnUnitAgentStopped);
        // A dying unit this agent removed by itself (see AdoptUnitsAsync): now its record goes.
        Receive<UnitRemoved>(m => _context.Topology.FinishRemovalAsync(m.Unit).ContinueWith(t =>
        {
            if (t.IsFaulted) _log.Warning("{0}: removed, but its record could not be deleted ({1}); it goes when this agent announces itself again",
                m.Unit, t.Exception!.GetBaseException().Message);
        }, TaskScheduler.Default));
    }

    public static Props Props(AgentContext context) => Akka.Actor.Props.Create(typeof(MachineAgent), context);

    public static string ActorName(string machine) => $"machine-{machine}";

    /// <summary>
    /// Unit agents restart from their persisted step on any unexpected failure, including a failure while
    /// starting (which Akka's default would answer with a stop). A unit agent that fails more than
    /// MaxRestarts times a minute is stopped, and its unit parked in the error state of the step it was in
    /// (see <see cref="OnUnitAgentStopped"/>): no crash loop, until resolved.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(
        maxNrOfRetries: MaxRestarts,
        withinTimeRange: TimeSpan.FromMinutes(1),
        localOnlyDecider: ex =>
        {
            _lastFailure = ex.GetBaseException().Message;
            _log.Warning("unit agent failed, restarting from its persisted step: {0}", _lastFailure);
            return Directive.Restart;
        });

    public const int MaxRestarts = 10;

    /// <summary>A unit agent stopped by its supervisor: record the failure as the unit's error state.</summary>
    private void OnUnitAgentStopped(Terminated terminated)
    {
        if (!_units.Remove(terminated.ActorRef, out var unit) || _removing.Remove(unit)) return;
        var paths = UnitPaths.For(_context.UnitsDirectory, unit);
        var cause = $"unit agent failed more than {MaxRestarts} times in a minute ({_lastFailure}); fix the cause, then run 'ensemble resolved --retry {unit}'";
        try
        {
            if (UnitStateFile.Load(paths) is not { } state) return;
            if (UnitLifecycle.Decide(state, new UnitTrigger.StepFailed(cause)) is not UnitDecision.Moved moved) return;
            UnitStateFile.Save(paths, moved.State);
            _log.Error("{0}: parked in {1}: {2}", unit, UnitLifecycle.StateName(moved.State.Phase), cause);
            _ = _context.Topology.SetUnitStateAsync(unit, moved.State.Phase, cause);
        }
        catch (Exception ex) when (DiskFaults.IsDiskFault(ex) || ex is UnitStateFileException)
        {
            // The unit's own disk is what fails: say so where status shows it; the machine agent carries on.
            var error = DiskFaults.Describe($"{cause}; its state file could not be updated either", ex, paths.Root, unit);
            _log.Error("{0}: {1}", unit, error);
            _ = _context.Topology.GetUnitAsync(unit).ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully && t.Result is { } record)
                    _ = _context.Topology.SetUnitStateAsync(unit, record.State, error);
            }, TaskScheduler.Default);
        }
    }

    private Relations.RelationsSnapshot _relations = Relations.RelationsSnapshot.Empty;

    private const string RelationWatcherName = "relations";

    protected override void PreStart()
    {
        Context.ActorOf(Relations.RelationWatcher.Props(new Relations.RelationStore(_context.Topology)), RelationWatcherName);
        Announce();
    }

    protected override void PostStop()
    {
        _ = _context.Topology.UnregisterAgentAsync(_context.Machine);
    }

    /// <summary>The store session was replaced after it expired (sent by the node that owns the session).</summary>
    public sealed record StoreSessionRenewed
    {
        public static readonly StoreSessionRenewed Instance = new();
    }

    private sealed class Started
    {
        public static readonly Started Instance = new();
    }

    private sealed record AnnounceAgain;

    private sealed record AnnounceFailed(Exception Cause);

    private TimeSpan _announceBackoff = TimeSpan.Zero;


    /// <summary>Writes the presence node (saga and controller find the agent by it), then adopts the units.</summary>
    private void Announce()
    {
        var system = (ExtendedActorSystem)Context.System;
        var address = Self.Path.ToStringWithAddress(system.Provider.DefaultAddress);
        _context.Topology.RegisterAgentAsync(new AgentPresence(_context.Machine, address))
            .PipeTo(Self, success: () => Started.Instance, failure: ex => new AnnounceFailed(ex));
    }

    /// <summary>The store is out of reach (or its session expired): try again with backoff, never crash (a
    /// restart would stop every unit agent, and their hooks, with it).</summary>
    private void OnAnnounceFailed(AnnounceFailed m)
    {
        _announceBackoff = Coordination.StoreTrouble.NextWait(_announceBackoff);
        _log.Warning("machine {0}: cannot reach the store ({1}); trying again in {2:0.##} s",
            _context.Machine, m.Cause.GetBaseException().Message, _announceBackoff.TotalSeconds);
        Timers.StartSingleTimer("announce", new AnnounceAgain(), _announceBackoff);
    }

    private async Task OnStartedAsync()
    {
        try
        {
            await AdoptUnitsAsync();
            _announceBackoff = TimeSpan.Zero;
        }
        catch (Exception ex) when (Coordination.StoreTrouble.IsTransient(ex))
        {
            OnAnnounceFailed(new AnnounceFailed(ex));
        }
    }

    /// <summary>Starts the agents of units already placed here: they resume from their state files.</summary>
    private async Task AdoptUnitsAsync()
    {
        foreach (var service in await _context.Topology.ListServicesAsync())
        foreach (var unit in await _context.Topology.ListUnitsAsync(service))
        {
            if (unit.Machine != _context.Machine) continue;
            var agent = UnitAgentFor(unit.Name);
            if (unit.Dying)
            {
                // Removed while this machine was down: remove it now (stop hook, files), then its record.
                _log.Info("{0}: removed while machine {1} was down; removing it now", unit.Name, _context.Machine);
                _removing.Add(unit.Name);
                agent.Tell(new RemoveUnit(unit.Name), Self);
                continue;
            }
            if (File.Exists(UnitPaths.For(_context.UnitsDirectory, unit.Name).StateFile)) continue;
            // Never started here: deploy exactly the content the unit was placed with.
            var sha = unit.Sha256 ?? (await _context.Topology.GetFormulaAsync(unit.Formula))?.Sha256;
            if (sha is not null) agent.Tell(new DeployUnit(unit.Name, new FormulaRef(FormulaId.Parse(unit.Formula), sha)));
        }
    }

    private void Route(IUnitMessage message)
    {
        var child = Context.Child(ChildName(message.Unit));
        if (!child.IsNobody())
        {
            child.Forward(message);
            return;
        }
        if (message is DeployUnit or UpgradeUnit or ResolveUnitError or GetUnitReport)
        {
            if (message is not DeployUnit && !File.Exists(UnitPaths.For(_context.UnitsDirectory, message.Unit).StateFile))
            {
                Sender.Tell(new UnitCommandRejected(message.Unit, $"unit {message.Unit} is not deployed on machine {_context.Machine}"));
                return;
            }
            UnitAgentFor(message.Unit).Forward(message);
            return;
        }
        if (message is RemoveUnit)
        {
            var paths = UnitPaths.For(_context.UnitsDirectory, message.Unit);
            try
            {
                if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true);
                Sender.Tell(new UnitRemoved(message.Unit));
            }
            catch (Exception ex) when (DiskFaults.IsDiskFault(ex))
            {
                Sender.Tell(new Status.Failure(new IOException($"cannot delete {paths.Root}: {ex.Message}; make it writable and remove the unit again", ex)));
            }
            return;
        }
        _log.Debug("dropping {0} for unit {1}: no agent for it here", message.GetType().Name, message.Unit);
    }

    private IActorRef UnitAgentFor(string unit)
    {
        var name = ChildName(unit);
        var child = Context.Child(name);
        if (!child.IsNobody()) return child;
        child = Context.ActorOf(UnitAgent.Props(unit, _context), name);
        _units[child] = unit;
        Context.Watch(child);
        return child;
    }

    private static string ChildName(string unit) => "unit-" + UnitNames.DirectoryName(unit);
}
