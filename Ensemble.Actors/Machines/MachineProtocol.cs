using Ensemble.Serialization;
using RejectionKind = Ensemble.Services.ServiceReplies.RejectionKind;

namespace Ensemble.Machines;

/// <summary>What the controller's machine registry (<c>/user/machines</c>, reachable through the receptionist) is asked.</summary>
public static class MachineRequests
{
    /// <summary>`ensemble add-machine [NAME]`: a machine record with a fresh join token (null name: the next machine-N).</summary>
    public sealed record AddMachine(string? Machine) : IWireMessage;

    /// <summary>`ensemble remove-machine NAME`: its token is revoked and its node, if a member, downed.</summary>
    public sealed record RemoveMachine(string Machine) : IWireMessage;

    /// <summary>
    /// An agent node asks to be admitted, before it joins the cluster: the machine it serves, the token
    /// add-machine issued, and the cluster address it will join from (the address the registry admits).
    /// </summary>
    public sealed record JoinMachine(string Machine, string Token, string Node) : IWireMessage;

    /// <summary>Answered with <see cref="MachineReplies.MachineViews"/>: every machine and its agent's state now.</summary>
    public sealed record GetMachines : IWireMessage;

    /// <summary>
    /// A controller node that also has the agent role tells the registry which machine it serves, at every start: a
    /// controller's own machine has no join token (it joins no other way) and goes with its controller. Accepted
    /// only from a member with the controller role.
    /// </summary>
    public sealed record ControllerMachine(string Machine, string Node) : IWireMessage;

    /// <summary>
    /// `ensemble enable-ha`: answered with <see cref="MachineReplies.HaPlan"/> (what more controllers need to be
    /// started with), or <see cref="MachineReplies.MachineRejected"/> when this environment cannot have several.
    /// </summary>
    public sealed record PlanHa(int Controllers) : IWireMessage;
}

/// <summary>What the machine registry answers.</summary>
public static class MachineReplies
{
    /// <summary>The token, shown once; Controllers: the ADDR:PORT a node joins through.</summary>
    public sealed record MachineAdded(string Machine, string Token, IReadOnlyList<string> Controllers, string Environment) : IWireMessage;

    public sealed record MachineRemoved(string Machine) : IWireMessage;

    /// <summary>The node may join: the seed nodes to join, and the store the environment keeps its topology in.</summary>
    public sealed record MachineAdmitted(string Machine, string Environment, IReadOnlyList<string> SeedNodes, string ZooKeeper, string Root) : IWireMessage;

    /// <summary>The node must not join: wrong, missing or revoked token, or a machine that cannot join from elsewhere.</summary>
    public sealed record JoinRefused(string Machine, string Reason) : IWireMessage;

    /// <summary>An operator's request was refused and nothing changed (Unavailable: try again later).</summary>
    public sealed record MachineRejected(string Machine, RejectionKind Kind, string Reason) : IWireMessage;

    public sealed record MachineViews(IReadOnlyList<MachineView> Machines) : IWireMessage;

    /// <summary>What a new controller is started with: the environment, its ZooKeeper and root, the running controllers (HOST:PORT), and how many more to start.</summary>
    public sealed record HaPlan(string Environment, string ZooKeeper, string Root, IReadOnlyList<string> Controllers, int ToStart) : IWireMessage;
}

/// <summary>A machine as status shows it: Node is its node's cluster address, Since when its agent entered State.</summary>
public sealed record MachineView(string Name, string? Node, AgentState State, DateTimeOffset? Since);
