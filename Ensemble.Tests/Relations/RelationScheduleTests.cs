using Ensemble.Relations;
using Xunit;

namespace Ensemble.Tests.Relations;

/// <summary>What a unit is told next about its relations: a pure difference, so nothing queued can be lost or doubled.</summary>
public sealed class RelationScheduleTests
{
    private static readonly RelationEndpoint Server = new("db", "server", RelationRole.Provider);
    private static readonly RelationEndpoint Database = new("web", "database", RelationRole.Requirer);

    private static RelationMember Member(string unit, long version = 1, params (string Remote, long Seen)[] seen) =>
        new(unit, new Dictionary<string, string>(), version, seen.ToDictionary(s => s.Remote, s => s.Seen));

    private static RelationsSnapshot Snapshot(bool dying, params RelationMember[] members) => new(new Dictionary<int, RelationView>
    {
        [3] = new(new RelationRecord(3, "mysql", [Server, Database], dying), members.ToDictionary(m => m.Unit)),
    });

    private static RelationAction? Next(RelationsSnapshot snapshot, RelationMember? me) =>
        RelationSchedule.Next("web/0", snapshot, _ => me);

    [Fact]
    public void A_unit_not_in_a_live_relation_enters_it_first()
    {
        Assert.Equal(new RelationAction.Enter(3), Next(Snapshot(false, Member("db/0")), null));
        Assert.Null(RelationSchedule.Next("cache/0", Snapshot(false, Member("db/0")), _ => null));
    }

    [Fact]
    public void Joined_is_followed_by_changed_for_the_same_unit_before_anything_else()
    {
        var me = Member("web/0");
        var snapshot = Snapshot(false, me, Member("db/0", 4), Member("db/1", 2), Member("web/1"));
        var joined = Assert.IsType<RelationAction.Hook>(Next(snapshot, me));
        Assert.Equal((RelationHookKind.Joined, "db/0", "database-relation-joined"), (joined.Kind, joined.Remote, joined.HookName));
        me = RelationSchedule.AfterHook(me, joined, null)!;
        var changed = Assert.IsType<RelationAction.Hook>(Next(snapshot, me));
        Assert.Equal((RelationHookKind.Changed, "db/0", 4L), (changed.Kind, changed.Remote, changed.RemoteVersion));
        me = RelationSchedule.AfterHook(me, changed, null)!;
        Assert.Equal((RelationHookKind.Joined, "db/1"), (((RelationAction.Hook)Next(snapshot, me)!).Kind, ((RelationAction.Hook)Next(snapshot, me)!).Remote));
    }

    [Fact]
    public void Many_changes_of_one_unit_are_one_changed_and_a_unit_that_came_and_went_is_nothing()
    {
        var me = Member("web/0", 1, ("db/0", 2));
        // db/0 changed three times while the unit's relations were stopped; db/5 joined and departed meanwhile.
        var changed = Assert.IsType<RelationAction.Hook>(Next(Snapshot(false, me, Member("db/0", 5)), me));
        Assert.Equal((RelationHookKind.Changed, 5L), (changed.Kind, changed.RemoteVersion));
        me = RelationSchedule.AfterHook(me, changed, null)!;
        Assert.Null(Next(Snapshot(false, me, Member("db/0", 5)), me));
    }

    [Fact]
    public void A_departed_unit_gets_departed_and_a_dying_relation_departed_for_each_then_broken_once()
    {
        var me = Member("web/0", 1, ("db/0", 2), ("db/1", 3));
        var departed = Assert.IsType<RelationAction.Hook>(Next(Snapshot(false, me, Member("db/0", 2)), me));
        Assert.Equal((RelationHookKind.Departed, "db/1"), (departed.Kind, departed.Remote));

        var dying = Snapshot(true, me, Member("db/0", 2), Member("db/1", 3));
        var first = Assert.IsType<RelationAction.Hook>(Next(dying, me));
        me = RelationSchedule.AfterHook(me, first, null)!;
        var second = Assert.IsType<RelationAction.Hook>(Next(dying, me));
        me = RelationSchedule.AfterHook(me, second, null)!;
        Assert.Equal([("db/0", RelationHookKind.Departed), ("db/1", RelationHookKind.Departed)], [(first.Remote!, first.Kind), (second.Remote!, second.Kind)]);
        var broken = Assert.IsType<RelationAction.Hook>(Next(dying, me));
        Assert.Equal(RelationHookKind.Broken, broken.Kind);
        Assert.Null(RelationSchedule.AfterHook(me, broken, null));
        Assert.Null(Next(dying, null));
    }

    [Fact]
    public void Settings_written_by_a_hook_move_the_version_only_when_they_change()
    {
        var me = Member("web/0");
        var hook = new RelationAction.Hook(3, "database", RelationHookKind.Joined, "db/0", 0);
        var written = RelationSchedule.AfterHook(me, hook, new Dictionary<string, string?> { ["host"] = "10.0.0.2" })!;
        Assert.Equal((2L, "10.0.0.2"), (written.SettingsVersion, written.Settings["host"]));
        var same = RelationSchedule.AfterHook(written, hook, new Dictionary<string, string?> { ["host"] = "10.0.0.2" })!;
        Assert.Equal(2L, same.SettingsVersion);
        var deleted = RelationSchedule.AfterHook(same, hook, new Dictionary<string, string?> { ["host"] = "" })!;
        Assert.Equal((3L, 0), (deleted.SettingsVersion, deleted.Settings.Count));
    }

    [Fact]
    public void In_a_peers_relation_the_remote_units_are_the_services_other_units()
    {
        var peer = new RelationEndpoint("web", "cluster", RelationRole.Peer);
        var snapshot = new RelationsSnapshot(new Dictionary<int, RelationView>
        {
            [1] = new(new RelationRecord(1, "web-peers", [peer]), new[] { Member("web/0"), Member("web/10"), Member("web/2") }.ToDictionary(m => m.Unit)),
        });
        Assert.Equal(["web/2", "web/10"], snapshot.Relations[1].RemotesOf("web/0").Select(m => m.Unit));
        Assert.Equal("cluster:1", snapshot.Relations[1].Record.IdFor("web"));
    }
}
