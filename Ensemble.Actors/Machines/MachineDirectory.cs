using Akka.Actor;
using Ensemble.Topology;

namespace Ensemble.Machines;

/// <summary>Where the controller's actors read the machines and their agents' states from.</summary>
public static class MachineDirectory
{
    /// <summary>
    /// The machines as the controller node's registry sees them now; without a registry (the test kit's in-process
    /// environment) every machine whose agent has a presence node is started.
    /// </summary>
    public static async Task<IReadOnlyList<MachineView>> ReadAsync(IActorRef? registry, TopologyStore topology, TimeSpan timeout)
    {
        if (registry is not null)
            return (await registry.Ask<MachineReplies.MachineViews>(new MachineRequests.GetMachines(), timeout)).Machines;
        return (await topology.ListPresentMachinesAsync()).Order(StringComparer.Ordinal)
            .Select(m => new MachineView(m, null, AgentState.Started, null)).ToList();
    }
}
