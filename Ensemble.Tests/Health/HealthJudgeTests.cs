using Ensemble.Health;
using Xunit;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Tests.Health;

/// <summary>The rules that turn a node's observations into healthy or unhealthy with reasons.</summary>
public sealed class HealthJudgeTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    private static NodeObservation Healthy() => new("10.0.0.2:4711", ["agent", "controller"], "machine-0", "Up", false, [],
        [new StoreHealth("controller", "zookeeper", "connected", null), new StoreHealth("agent", "zookeeper", "connected", null)],
        new JournalHealth(true, null, 4), JournalExpected: true, Now.AddMinutes(-3), Now);

    [Fact]
    public void An_up_member_with_connected_stores_and_a_journal_that_answers_is_healthy()
    {
        var health = HealthJudge.Judge(Healthy());
        Assert.True(health.Healthy);
        Assert.Empty(health.Reasons);
        Assert.Equal(TimeSpan.FromMinutes(3), health.Uptime);
    }

    [Fact]
    public void Each_failing_check_is_a_reason_of_its_own()
    {
        var health = HealthJudge.Judge(Healthy() with
        {
            MemberStatus = "Leaving",
            SeenUnreachableBySelf = true,
            Stores = [new StoreHealth("agent", "zookeeper", "reconnecting", "connection loss"), new StoreHealth("controller", "zookeeper", "connected", null)],
            Journal = new JournalHealth(false, "database is locked", 3000),
        });
        Assert.False(health.Healthy);
        Assert.Equal([
            "cluster member is Leaving, not Up",
            "other cluster members see this node as unreachable",
            "coordination store session (agent, zookeeper) is reconnecting: connection loss",
            "journal is not reachable: database is locked",
        ], health.Reasons);
    }

    [Fact]
    public void Members_this_node_sees_unreachable_are_reported_but_not_held_against_it()
    {
        var health = HealthJudge.Judge(Healthy() with { Unreachable = ["10.0.0.3:4711"] });
        Assert.True(health.Healthy);
        Assert.Equal(["10.0.0.3:4711"], health.Unreachable);
    }

    [Fact]
    public void An_agent_node_has_no_journal_to_reach_and_a_controller_without_a_check_yet_is_not_healthy()
    {
        Assert.True(HealthJudge.Judge(Healthy() with { Journal = null, JournalExpected = false }).Healthy);
        Assert.Equal(["journal not checked yet"], HealthJudge.Judge(Healthy() with { Journal = null }).Reasons);
    }

    [Fact]
    public void A_member_that_does_not_answer_is_unhealthy_with_its_member_status()
    {
        var health = HealthJudge.NotAnswering("10.0.0.3:4711", ["agent"], "Up", TimeSpan.FromSeconds(5), Now);
        Assert.False(health.Healthy);
        Assert.Equal(["did not answer within 5 s (member status Up)"], health.Reasons);
    }

    [Fact]
    public void A_health_file_is_fresh_within_its_max_age_and_reads_back()
    {
        Assert.True(HealthJudge.IsFresh(Now.AddSeconds(-29), Now, TimeSpan.FromSeconds(30)));
        Assert.False(HealthJudge.IsFresh(Now.AddSeconds(-31), Now, TimeSpan.FromSeconds(30)));
        var read = HealthDocument.Read(HealthDocument.Of(HealthJudge.Judge(Healthy() with { MemberStatus = "Joining" })).ToJsonString());
        Assert.NotNull(read);
        Assert.Equal(Now, read.Value.CheckedAt);
        Assert.False(read.Value.Healthy);
        Assert.Equal(["cluster member is Joining, not Up"], read.Value.Reasons);
        Assert.Null(HealthDocument.Read("{\"something\": 1}"));
        Assert.Null(HealthDocument.Read("not json"));
    }
}
