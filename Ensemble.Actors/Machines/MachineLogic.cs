using Akka.Cluster;
using Ensemble.Topology;
using static Ensemble.Machines.MachineRequests;

namespace Ensemble.Machines;

/// <summary>A cluster member as the machine registry sees it.</summary>
public sealed record MemberView(MemberStatus Status, bool Reachable);

/// <summary>Why a node is not admitted: a sentence for the node (which says no more than it needs) and one for the controller's log.</summary>
public sealed record JoinRefusal(string ForNode, string ForLog);

/// <summary>
/// The pure rules of the machine registry: what state a machine's agent is in, who may stay in the cluster,
/// and whether a node may join. The registry actor only reads the store and the cluster, writes, and talks.
/// </summary>
public static class MachineLogic
{
    /// <summary>
    /// The agent's state from what the controller sees: its presence node, and the cluster member at the
    /// address last admitted for its machine (null: no such member).
    /// </summary>
    public static AgentState StateOf(bool present, MemberView? member) => member switch
    {
        null => AgentState.Down,
        { Status: MemberStatus.Removed } => AgentState.Down,
        { Reachable: false } => AgentState.Lost,
        { Status: MemberStatus.Up or MemberStatus.WeaklyUp } when present => AgentState.Started,
        _ => AgentState.Down,
    };

    /// <summary>The record in <paramref name="state"/>; Since moves only when the state changes.</summary>
    public static MachineRecord WithState(MachineRecord record, AgentState state, DateTimeOffset now) =>
        record.State == state && record.Since is not null ? record : record with { State = state, Since = now };

    /// <summary>A member may stay in the cluster if it is this controller's own node or the node last admitted for a machine.</summary>
    public static bool IsAdmitted(string node, string self, IEnumerable<MachineRecord> machines) =>
        node == self || machines.Any(m => m.Node == node);

    /// <summary>Why <paramref name="request"/> is refused, or null when the node may join as its machine.</summary>
    public static JoinRefusal? CheckJoin(JoinMachine request, MachineRecord? record, bool sharedStore, string systemName)
    {
        var machine = request.Machine;
        if (!MachineNames.IsValid(machine))
            return new($"'{Clip(machine)}' is not a machine name ({MachineNames.Rule})", $"a node asked to join as '{Clip(machine)}', which is not a machine name");
        if (!IsNodeAddress(request.Node, systemName))
            return new($"'{Clip(request.Node)}' is not a node address", $"machine '{machine}' asked to join from '{Clip(request.Node)}', which is not a node address");
        if (string.IsNullOrEmpty(request.Token))
            return new($"no join token was given for machine '{machine}'; pass --token with the one 'ensemble add-machine {machine}' printed",
                $"machine '{machine}' asked to join from {request.Node} without a token");
        var refusedToken = $"machine '{machine}' is not admitted: no machine of that name was added, or its token is wrong or was revoked; " +
                           $"run the line 'ensemble add-machine {machine}' printed";
        if (record is null)
            return new(refusedToken, $"machine '{machine}' asked to join from {request.Node}, but no machine of that name was added");
        if (record.TokenHash is null)
            return new($"machine '{machine}' is the controller's own machine; it joins with the controller's node, not from elsewhere",
                $"a node at {request.Node} asked to join as '{machine}', the controller's own machine");
        if (!MachineTokens.Matches(request.Token, record.TokenHash))
            return new(refusedToken, $"machine '{machine}' asked to join from {request.Node} with a wrong token");
        if (!sharedStore)
            return new("the environment keeps its topology in its controller's embedded store, which other hosts cannot reach; " +
                       "its controller must run with --zookeeper for machines to join",
                $"machine '{machine}' asked to join from {request.Node}, but this controller has no ZooKeeper to share with it");
        return null;
    }

    /// <summary>akka.tcp://SYSTEM@HOST:PORT and nothing else: the registry admits exactly that address.</summary>
    public static bool IsNodeAddress(string? node, string systemName)
    {
        if (node is null || node.Length > 512) return false;
        try
        {
            var address = Akka.Actor.Address.Parse(node);
            return address.Protocol == "akka.tcp" && address.System == systemName && !string.IsNullOrEmpty(address.Host)
                   && address.Port is > 0 and <= 65535 && address.ToString() == node;
        }
        catch (Exception ex) when (ex is UriFormatException or FormatException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>HOST:PORT of a node address, as status shows it.</summary>
    public static string? HostAndPort(string? node)
    {
        if (node is null) return null;
        try
        {
            var address = Akka.Actor.Address.Parse(node);
            return address.Host is null ? node : $"{address.Host}:{address.Port}";
        }
        catch (Exception ex) when (ex is UriFormatException or FormatException or ArgumentException)
        {
            return node;
        }
    }

    /// <summary>What a node sent, cut short for a log line or a reply: network input is not echoed at any length.</summary>
    private static string Clip(string? text) => text is null ? "" : text.Length <= 80 ? text : text[..80] + "…";
}
