using Akka.Cluster;
using Ensemble.Machines;
using Ensemble.Services;
using Ensemble.Topology;
using Xunit;
using static Ensemble.Machines.MachineRequests;

namespace Ensemble.Tests.Machines;

/// <summary>
/// The machine registry's and placement's pure rules, without an actor system: an agent's state and since-when,
/// who is admitted to join, tokens, and where new units go.
/// </summary>
public sealed class MachineLogicTests
{
    private const string SystemName = "ensemble";
    private const string Node = "akka.tcp://ensemble@10.0.0.4:40001";
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(true, MemberStatus.Up, true, AgentState.Started)]
    [InlineData(true, MemberStatus.WeaklyUp, true, AgentState.Started)]
    [InlineData(false, MemberStatus.Up, true, AgentState.Down)]      // a member without presence has no running agent
    [InlineData(true, MemberStatus.Up, false, AgentState.Lost)]      // unreachable: the cluster has not decided yet
    [InlineData(false, MemberStatus.Up, false, AgentState.Lost)]
    [InlineData(true, MemberStatus.Down, true, AgentState.Down)]
    [InlineData(true, MemberStatus.Removed, false, AgentState.Down)]
    [InlineData(true, MemberStatus.Joining, true, AgentState.Down)]
    public void The_agent_state_follows_its_member_and_presence(bool present, MemberStatus status, bool reachable, AgentState expected) =>
        Assert.Equal(expected, MachineLogic.StateOf(present, new MemberView(status, reachable)));

    [Fact]
    public void A_machine_without_a_member_is_down() => Assert.Equal(AgentState.Down, MachineLogic.StateOf(true, null));

    [Fact]
    public void Since_moves_only_when_the_state_changes()
    {
        var record = new MachineRecord("a1", "hash", T0, State: AgentState.Started, Since: T0);
        Assert.Same(record, MachineLogic.WithState(record, AgentState.Started, T0.AddMinutes(5)));
        var lost = MachineLogic.WithState(record, AgentState.Lost, T0.AddMinutes(5));
        Assert.Equal((AgentState.Lost, T0.AddMinutes(5)), (lost.State, lost.Since));
        var down = MachineLogic.WithState(lost, AgentState.Down, T0.AddMinutes(6));
        Assert.Equal((AgentState.Down, T0.AddMinutes(6)), (down.State, down.Since));
    }

    [Fact]
    public void Only_the_controller_itself_and_nodes_admitted_for_a_machine_may_stay()
    {
        var machines = new[] { new MachineRecord("a1", "hash", T0, Node: Node) };
        Assert.True(MachineLogic.IsAdmitted(Node, "akka.tcp://ensemble@10.0.0.2:4711", machines));
        Assert.True(MachineLogic.IsAdmitted("akka.tcp://ensemble@10.0.0.2:4711", "akka.tcp://ensemble@10.0.0.2:4711", machines));
        Assert.False(MachineLogic.IsAdmitted("akka.tcp://ensemble@10.0.0.9:40001", "akka.tcp://ensemble@10.0.0.2:4711", machines));
    }

    [Fact]
    public void The_right_token_is_admitted_when_the_store_is_shared()
    {
        var (token, hash) = MachineTokens.Issue();
        Assert.Null(MachineLogic.CheckJoin(new JoinMachine("a1", token, Node), new MachineRecord("a1", hash, T0), sharedStore: true, SystemName));
    }

    [Fact]
    public void A_wrong_missing_or_unknown_token_is_refused_with_a_sentence_for_the_node_and_one_for_the_log()
    {
        var (token, hash) = MachineTokens.Issue();
        var record = new MachineRecord("a1", hash, T0);

        var wrong = MachineLogic.CheckJoin(new JoinMachine("a1", new string('0', 64), Node), record, true, SystemName)!;
        Assert.Contains("is not admitted", wrong.ForNode);
        Assert.Contains("with a wrong token", wrong.ForLog);
        Assert.DoesNotContain(hash, wrong.ForNode + wrong.ForLog);

        var none = MachineLogic.CheckJoin(new JoinMachine("a1", "", Node), record, true, SystemName)!;
        Assert.Contains("no join token was given", none.ForNode);
        Assert.Contains("without a token", none.ForLog);

        // Not added and wrong token read the same to the node: a stranger learns nothing about which machines exist.
        var unknown = MachineLogic.CheckJoin(new JoinMachine("a9", token, Node), null, true, SystemName)!;
        Assert.Equal(wrong.ForNode.Replace("a1", "a9"), unknown.ForNode);
        Assert.Contains("no machine of that name was added", unknown.ForLog);

        var revoked = MachineLogic.CheckJoin(new JoinMachine("machine-0", token, Node), new MachineRecord("machine-0", null, T0), true, SystemName)!;
        Assert.Contains("controller's own machine", revoked.ForNode);

        var embedded = MachineLogic.CheckJoin(new JoinMachine("a1", token, Node), record, sharedStore: false, SystemName)!;
        Assert.Contains("--zookeeper", embedded.ForNode);
    }

    [Theory]
    [InlineData("akka.tcp://other@10.0.0.4:40001")]
    [InlineData("akka.tcp://ensemble@10.0.0.4")]
    [InlineData("akka://ensemble")]
    [InlineData("akka.tcp://ensemble@10.0.0.4:40001/user/x")]
    [InlineData("not an address")]
    public void A_node_address_that_is_not_exactly_one_of_ours_is_refused(string node)
    {
        var (token, hash) = MachineTokens.Issue();
        var refusal = MachineLogic.CheckJoin(new JoinMachine("a1", token, node), new MachineRecord("a1", hash, T0), true, SystemName);
        Assert.NotNull(refusal);
        Assert.Contains("is not a node address", refusal.ForNode);
    }

    [Fact]
    public void A_machine_name_from_the_network_is_checked_and_clipped()
    {
        var refusal = MachineLogic.CheckJoin(new JoinMachine("../" + new string('x', 500), "t", Node), null, true, SystemName)!;
        Assert.Contains("is not a machine name", refusal.ForNode);
        Assert.True(refusal.ForLog.Length < 200, refusal.ForLog);
    }

    [Fact]
    public void Tokens_match_only_their_own_hash()
    {
        var (token, hash) = MachineTokens.Issue();
        var (other, _) = MachineTokens.Issue();
        Assert.Matches("^[0-9a-f]{64}$", token);
        Assert.NotEqual(token, other);
        Assert.True(MachineTokens.Matches(token, hash));
        Assert.False(MachineTokens.Matches(other, hash));
        Assert.False(MachineTokens.Matches(null, hash));
        Assert.False(MachineTokens.Matches(token, "not hex"));
        Assert.False(MachineTokens.Matches(new string('a', MachineTokens.MaxLength + 1), hash));
    }

    [Fact]
    public void Units_go_to_the_started_machine_with_the_fewest_of_the_service_units_then_by_name()
    {
        var state = ServiceState.Empty("hello") with
        {
            Units = System.Collections.Immutable.ImmutableSortedDictionary<string, string>.Empty.Add("hello/0", "a2"),
            NextUnitNumber = 1,
        };
        var placed = ServiceLogic.PlanPlacement(state, 3, ["a1", "a2", "a3"]);
        Assert.Equal([("hello/1", "a1"), ("hello/2", "a3"), ("hello/3", "a1")], placed.Select(p => (p.Unit, p.Machine)).ToArray());
    }

    [Fact]
    public void Placement_with_to_names_a_started_machine_and_without_it_takes_every_started_one()
    {
        MachineView[] machines =
        [
            new("a1", Node, AgentState.Started, T0),
            new("a2", null, AgentState.Down, T0),
            new("a3", null, AgentState.Started, T0),
        ];
        Assert.Null(ServiceLogic.CheckPlacement("hello", null, machines, out var all));
        Assert.Equal(["a1", "a3"], all);
        Assert.Null(ServiceLogic.CheckPlacement("hello", "a3", machines, out var one));
        Assert.Equal(["a3"], one);

        var down = ServiceLogic.CheckPlacement("hello", "a2", machines, out _)!;
        Assert.Equal(ServiceReplies.RejectionKind.Unavailable, down.Kind);
        Assert.Contains("machine 'a2' is down since 2026-11-27 12:00:00Z", down.Reason);
        Assert.Equal(ServiceReplies.RejectionKind.NotFound, ServiceLogic.CheckPlacement("hello", "a9", machines, out _)!.Kind);
        Assert.Equal(ServiceReplies.RejectionKind.InvalidInput, ServiceLogic.CheckPlacement("hello", "A9", machines, out _)!.Kind);
        Assert.Equal(ServiceReplies.RejectionKind.Unavailable, ServiceLogic.CheckPlacement("hello", null, [machines[1]], out _)!.Kind);
    }
}
