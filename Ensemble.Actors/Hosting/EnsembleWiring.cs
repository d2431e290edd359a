using Ensemble.Coordination;
using Akka.Actor;
using Ensemble.Services;
using Ensemble.Units;

namespace Ensemble.Hosting;

/// <summary>The one wiring of a node's actors, used by the real hosts and by the test kit alike.</summary>
public static class EnsembleWiring
{
    /// <summary>Starts the controller role: the service coordinators behind one router.</summary>
    public static async Task<IActorRef> StartControllerAsync(ActorSystem system, ControllerContext context, string name = ServiceManager.ActorName)
    {
        await context.Topology.EnsureLayoutAsync();
        return system.ActorOf(ServiceManager.Props(context), name);
    }

    /// <summary>What the unit agents of one machine share: its directory, its formula cache and hook runner.</summary>
    public static AgentContext AgentContextFor(string machine, string machineDirectory, Topology.TopologyStore topology,
        Formulas.IFormulaStorage storage, AgentSettings settings, IReadOnlyDictionary<UnitStep, Units.Steps.IUnitStep>? steps = null) =>
        new(machine, machineDirectory, topology,
            new FormulaCache(storage, Path.Combine(machineDirectory, "formula-cache")),
            new Hooks.ProcessHookRunner(settings.HookTimeout, settings.MaxParallelHooks), settings, steps ?? Units.Steps.UnitSteps.Standard);

    /// <summary>Starts the agent role for one machine; it announces itself and adopts the units placed on it.</summary>
    public static async Task<IActorRef> StartAgentAsync(ActorSystem system, AgentContext context, ICoordinationStore session)
    {
        await context.Topology.EnsureLayoutAsync();
        var agent = system.ActorOf(MachineAgent.Props(context), MachineAgent.ActorName(context.Machine));
        // What an expired session owned (the agent's presence) is re-created by the machine agent.
        if (session is RenewingZooKeeperStore renewing)
            renewing.Renewed += _ => agent.Tell(MachineAgent.StoreSessionRenewed.Instance);
        return agent;
    }
}
