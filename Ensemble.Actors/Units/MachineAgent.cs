using Akka.Actor;
using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Topology;
using static Ensemble.Units.UnitProtocol;

namespace Ensemble.Units;

/// <summary>
/// The agent of one machine: announces itself in the topology (an ephemeral presence node carrying its
/// address), hosts a <see cref="UnitAgent"/> per unit placed on the machine and routes unit messages to them.
/// </summary>
public sealed class MachineAgent : ReceiveActor
{
    private readonly AgentContext _context;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public MachineAgent(AgentContext context)
    {
        _context = context;
        ReceiveAsync<Started>(_ => AdoptUnitsAsync());
        Receive<IUnitMessage>(Route);
    }

    public static Props Props(AgentContext context) => Akka.Actor.Props.Create(() => new MachineAgent(context));

    public static string ActorName(string machine) => $"machine-{machine}";

    /// <summary>
    /// Unit agents restart from their persisted step on any unexpected failure, including a failure while
    /// starting (which Akka's default would answer with a stop). A unit that keeps crashing is stopped
    /// rather than left in a crash loop; its state file keeps where it stood for the next agent start.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(
        maxNrOfRetries: 10,
        withinTimeRange: TimeSpan.FromMinutes(1),
        localOnlyDecider: ex =>
        {
            _log.Warning("unit agent failed, restarting from its persisted step: {0}", ex.GetBaseException().Message);
            return Directive.Restart;
        });

    protected override void PreStart()
    {
        var system = (ExtendedActorSystem)Context.System;
        var address = Self.Path.ToStringWithAddress(system.Provider.DefaultAddress);
        var self = Self;
        _context.Topology.RegisterAgentAsync(new AgentPresence(_context.Machine, address))
            .PipeTo(self, success: () => Started.Instance);
    }

    protected override void PostStop()
    {
        _ = _context.Topology.UnregisterAgentAsync(_context.Machine);
    }

    private sealed class Started
    {
        public static readonly Started Instance = new();
    }

    /// <summary>Starts the agents of units already placed here: they resume from their state files.</summary>
    private async Task AdoptUnitsAsync()
    {
        foreach (var service in await _context.Topology.ListServicesAsync())
        foreach (var unit in await _context.Topology.ListUnitsAsync(service))
        {
            if (unit.Machine != _context.Machine) continue;
            var agent = UnitAgentFor(unit.Name);
            if (UnitStateFile.Load(UnitPaths.For(_context.UnitsDirectory, unit.Name)) is null
                && await _context.Topology.GetFormulaAsync(unit.Formula) is { } formula)
            {
                agent.Tell(new DeployUnit(unit.Name, new FormulaRef(FormulaId.Parse(formula.Id), formula.Sha256)));
            }
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
        if (message is DeployUnit or UpgradeUnit or ResolveUnit or GetUnitStatus)
        {
            if (message is not DeployUnit && UnitStateFile.Load(UnitPaths.For(_context.UnitsDirectory, message.Unit)) is null)
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
            if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true);
            Sender.Tell(new UnitRemoved(message.Unit));
            return;
        }
        _log.Debug("dropping {0} for unit {1}: no agent for it here", message.GetType().Name, message.Unit);
    }

    private IActorRef UnitAgentFor(string unit)
    {
        var name = ChildName(unit);
        var child = Context.Child(name);
        return child.IsNobody() ? Context.ActorOf(UnitAgent.Props(unit, _context), name) : child;
    }

    private static string ChildName(string unit) => "unit-" + UnitNames.DirectoryName(unit);
}
