using Akka.Actor;
using Ensemble.Relations;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.Relations;

/// <summary>
/// Relations between real units on two machines, with real relation hooks: established both ways, ended by
/// remove-relation and remove-unit, stopped during an upgrade, errors resolved, an agent killed mid hook.
/// </summary>
public sealed class RelationLifecycleTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    private Task<object> AskAsync(object request) => Env.Services.Ask<object>(request, TimeSpan.FromSeconds(30));

    private async Task<RelationReplies.RelationAdded> RelateAsync(string a, string b) =>
        Assert.IsType<RelationReplies.RelationAdded>(await AskAsync(new RelationRequests.AddRelation(a, b)));

    private string Control => TestFormulas.ControlDirectory(Repository);

    private Task WaitForTraceAsync(Func<IReadOnlyList<string>, bool> condition, string what) =>
        LocalEnvironment.WaitUntilAsync(() => Task.FromResult(condition(RelationFormulas.Trace(Repository))), Deadline, what);

    private int Ended(string unit, string hook, string? remote = null) => RelationFormulas.Ended(Repository, unit, hook, remote);

    private async Task<(IReadOnlyList<string> Db, IReadOnlyList<string> Web)> DeployPairAsync(int dbUnits = 1, int webUnits = 2)
    {
        RelationFormulas.Write(Repository, "db", 1, ("provides", "server", "mysql"));
        RelationFormulas.Write(Repository, "web", 1, ("requires", "database", "mysql"));
        return (await DeployAsync("db", dbUnits), await DeployAsync("web", webUnits));
    }

    [Fact]
    public async Task A_relation_is_established_both_ways_and_remove_relation_runs_departed_then_broken_on_every_unit()
    {
        var (db, web) = await DeployPairAsync();
        Assert.NotEqual((await Env.Topology.GetUnitAsync(web[0]))!.Machine, (await Env.Topology.GetUnitAsync(web[1]))!.Machine);
        var added = await RelateAsync("web", "db");
        Assert.Equal("db:server", added.Provider);
        Assert.Equal("web:database", added.Requirer);

        await WaitForTraceAsync(_ => web.All(w => Ended(w, "database-relation-changed", db[0]) == 1) && web.All(w => Ended(db[0], "server-relation-changed", w) == 1),
            "joined and changed on both sides");
        foreach (var w in web)
        {
            Assert.Equal(1, Ended(w, "database-relation-joined", db[0]));
            Assert.Equal(1, Ended(db[0], "server-relation-joined", w));
            // -changed comes right after -joined, for the same remote unit.
            var mine = RelationFormulas.Trace(Repository).Where(l => l.StartsWith(w + " ", StringComparison.Ordinal) && l.EndsWith(" end", StringComparison.Ordinal)).ToList();
            Assert.Equal([$"{w} database-relation-joined database:{added.Id} {db[0]} end", $"{w} database-relation-changed database:{added.Id} {db[0]} end"], mine);
        }

        var status = Assert.IsType<Ensemble.Services.EnvironmentReplies.Status>(await AskAsync(new Ensemble.Services.EnvironmentRequests.GetStatus()));
        var relation = Assert.Single(status.Relations!);
        Assert.Equal(["db:server", "web:database"], relation.Endpoints);
        Assert.Equal([db[0], .. web], relation.Units);

        Assert.IsType<RelationReplies.RelationRemoved>(await AskAsync(new RelationRequests.RemoveRelation("db", "web:database")));
        await WaitForTraceAsync(_ => web.Append(db[0]).All(u => Ended(u, u.StartsWith("db", StringComparison.Ordinal) ? "server-relation-broken" : "database-relation-broken") == 1),
            "broken on every unit");
        foreach (var w in web)
        {
            Assert.Equal(1, Ended(w, "database-relation-departed", db[0]));
            Assert.Equal(1, Ended(db[0], "server-relation-departed", w));
        }
        await LocalEnvironment.WaitUntilAsync(async () => (await new RelationStore(Env.Topology).ListAsync()).Count == 0, Deadline, "the relation to be gone from the store");
        // Each of the four pairs was joined once, from each side: nothing more.
        Assert.Equal(4, RelationFormulas.Trace(Repository).Count(l => l.Contains("-relation-joined", StringComparison.Ordinal) && l.EndsWith(" end", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Ambiguous_and_incompatible_pairs_are_refused_naming_the_candidates_and_nothing_is_related()
    {
        RelationFormulas.Write(Repository, "db", 1, ("provides", "server", "mysql"), ("provides", "replica", "mysql"));
        RelationFormulas.Write(Repository, "web", 1, ("requires", "database", "mysql"));
        RelationFormulas.Write(Repository, "cache", 1, ("provides", "cache", "memcache"));
        await DeployAsync("db", 1);
        await DeployAsync("web", 1);
        await DeployAsync("cache", 1);

        var ambiguous = Assert.IsType<CommandRejected>(await AskAsync(new RelationRequests.AddRelation("web", "db")));
        Assert.Contains("db:server web:database", ambiguous.Reason, StringComparison.Ordinal);
        Assert.Contains("db:replica web:database", ambiguous.Reason, StringComparison.Ordinal);
        var incompatible = Assert.IsType<CommandRejected>(await AskAsync(new RelationRequests.AddRelation("web", "cache")));
        Assert.Contains("cache provides cache (memcache)", incompatible.Reason, StringComparison.Ordinal);
        Assert.Equal(RejectionKind.NotFound, Assert.IsType<CommandRejected>(await AskAsync(new RelationRequests.AddRelation("web", "nosuch"))).Kind);
        Assert.Empty(await new RelationStore(Env.Topology).ListAsync());

        // Named, it is one relation; named twice, it is refused as there already.
        await RelateAsync("web", "db:replica");
        Assert.Contains("already related", Assert.IsType<CommandRejected>(await AskAsync(new RelationRequests.AddRelation("db:replica", "web"))).Reason, StringComparison.Ordinal);
        // The same endpoint in a second relation gets its own id.
        var second = await RelateAsync("web", "db:server");
        Assert.Equal(2, (await new RelationStore(Env.Topology).ListAsync()).Count);
        await WaitForTraceAsync(t => Ended("web/0", "database-relation-changed") == 2, "web/0 to be told of both relations");
        Assert.Contains(RelationFormulas.Trace(Repository), l => l == $"web/0 database-relation-changed database:{second.Id} db/0 end");
    }

    [Fact]
    public async Task Remove_unit_runs_departed_on_the_remote_units_and_departed_then_broken_on_the_removed_one()
    {
        var (db, web) = await DeployPairAsync(dbUnits: 2, webUnits: 1);
        await RelateAsync("web", "db");
        await WaitForTraceAsync(_ => db.All(d => Ended(web[0], "database-relation-changed", d) == 1 && Ended(d, "server-relation-changed", web[0]) == 1), "the relation on all units");

        Assert.IsType<UnitDestroyed>(await Env.AskAsync<object>(new DestroyUnit("db", db[1]), TimeSpan.FromMinutes(2)));
        await WaitForTraceAsync(_ => Ended(web[0], "database-relation-departed", db[1]) == 1, "web/0 to see db/1 depart");
        Assert.Equal(1, Ended(db[1], "server-relation-departed", web[0]));
        Assert.Equal(1, Ended(db[1], "server-relation-broken"));
        Assert.Equal(0, Ended(db[0], "server-relation-departed"));
        Assert.Equal(0, Ended(web[0], "database-relation-broken"));
        var members = await new RelationStore(Env.Topology).ListMembersAsync(Assert.Single(await new RelationStore(Env.Topology).ListAsync()).Id);
        Assert.Equal([db[0], web[0]], members.Select(m => m.Unit).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_failing_relation_hook_puts_the_unit_in_error_and_resolved_retry_runs_it_again()
    {
        var (db, web) = await DeployPairAsync(webUnits: 1);
        File.WriteAllText(Path.Combine(Control, "fail-database-relation-changed"), "");
        await RelateAsync("web", "db");
        await WaitForUnitsAsync(web, u => u.Error is not null, "web/0 to show the relation hook error");
        var error = (await Env.Topology.GetUnitAsync(web[0]))!.Error!;
        Assert.Contains("database-relation-changed", error, StringComparison.Ordinal);
        Assert.Contains("resolved --retry", error, StringComparison.Ordinal);
        Assert.Equal(0, Ended(web[0], "database-relation-changed"));

        File.Delete(Path.Combine(Control, "fail-database-relation-changed"));
        var resolved = await Env.Services.Ask<object>(new ResolveUnit("web", web[0], Retry: true), TimeSpan.FromSeconds(30));
        Assert.IsType<UnitReplies.UnitResolved>(resolved);
        await WaitForTraceAsync(_ => Ended(web[0], "database-relation-changed", db[0]) == 1, "the hook to succeed on retry");
        await WaitForUnitsAsync(web, u => u.Error is null && u.State == UnitPhase.Running, "the error to clear");
    }

    [Fact]
    public async Task Relation_changes_during_an_upgrade_are_delivered_after_it_collapsed_none_lost_none_twice()
    {
        var (db, web) = await DeployPairAsync(dbUnits: 2, webUnits: 1);
        await RelateAsync("web", "db");
        await WaitForTraceAsync(_ => db.All(d => Ended(web[0], "database-relation-changed", d) == 1), "web/0 to know both db units");

        File.WriteAllText(Path.Combine(Control, "hold-upgrade-formula"), "");
        RelationFormulas.Write(Repository, "web", 2, ("requires", "database", "mysql"));
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        var webData = await DataDirAsync(web[0]);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(webData).Contains("upgrade-formula 2 begin")), Deadline, "the upgrade hook to begin");

        // Meanwhile: one db unit goes, two come (one of which goes again before the upgrade ends).
        Assert.IsType<UnitDestroyed>(await Env.AskAsync<object>(new DestroyUnit("db", db[1]), TimeSpan.FromMinutes(2)));
        var added = Assert.IsType<UnitsAdded>(await Env.AskAsync<object>(new AddUnits("db", 2)));
        await WaitForTraceAsync(_ => added.Units.All(d => Ended(d, "server-relation-changed", web[0]) == 1), "the new db units to relate to web/0");
        Assert.IsType<UnitDestroyed>(await Env.AskAsync<object>(new DestroyUnit("db", added.Units[1]), TimeSpan.FromMinutes(2)));
        Assert.Equal(0, Ended(web[0], "database-relation-departed"));
        Assert.Equal(0, Ended(web[0], "database-relation-joined", added.Units[0]));

        File.Delete(Path.Combine(Control, "hold-upgrade-formula"));
        await WaitForUpgradeToEndAsync("web");
        await WaitForTraceAsync(_ => Ended(web[0], "database-relation-changed", added.Units[0]) == 1, "web/0 to be told of the new db unit");
        await WaitForTraceAsync(_ => Ended(web[0], "database-relation-departed", db[1]) == 1, "web/0 to be told db/1 left");
        var hooks = TestFormulas.HookTrace(webData);
        var startedAt = RelationFormulas.Trace(Repository).ToList();
        // Nothing for the unit that came and went, nothing twice, and all of it after the upgrade's start hook.
        Assert.Equal(0, Ended(web[0], "database-relation-joined", added.Units[1]));
        Assert.Equal(0, Ended(web[0], "database-relation-departed", added.Units[1]));
        Assert.Equal(1, Ended(web[0], "database-relation-joined", added.Units[0]));
        Assert.Contains("start 2 end", hooks);
        Assert.Equal(1, Ended(web[0], "database-relation-changed", db[0]));
    }

    [Fact]
    public async Task A_unit_agent_stopped_mid_relation_hook_runs_it_again_once_when_it_is_back()
    {
        var (db, web) = await DeployPairAsync(webUnits: 1);
        var machine = (await Env.Topology.GetUnitAsync(web[0]))!.Machine;
        File.WriteAllText(Path.Combine(Control, "hold-database-relation-changed"), "");
        var relation = await RelateAsync("web", "db");
        await WaitForTraceAsync(t => t.Contains($"{web[0]} database-relation-changed database:{relation.Id} {db[0]} begin"), "web/0's changed hook to begin");

        await Env.StopMachineAsync(machine);
        File.Delete(Path.Combine(Control, "hold-database-relation-changed"));
        Assert.Equal(0, Ended(web[0], "database-relation-changed"));
        await Env.StartMachineAsync(machine);

        await WaitForTraceAsync(_ => Ended(web[0], "database-relation-changed", db[0]) == 1, "the changed hook to run again and end");
        Assert.Equal(1, Ended(web[0], "database-relation-joined", db[0]));
        // Committed once it ended, and then settled: not run again.
        await LocalEnvironment.WaitUntilAsync(async () => (await new RelationStore(Env.Topology).GetMemberAsync(relation.Id, web[0]))?.Seen.GetValueOrDefault(db[0]) > 0,
            Deadline, "web/0 to record that it was told of db/0's settings");
        Assert.Equal(1, Ended(web[0], "database-relation-changed"));
    }

    [Fact]
    public async Task The_units_of_a_service_with_peers_are_related_to_each_other_without_being_asked()
    {
        RelationFormulas.Write(Repository, "cluster", 1, ("peers", "ring", "ring-peers"));
        var units = await DeployAsync("cluster", 3);
        var relation = Assert.Single(await new RelationStore(Env.Topology).ListAsync());
        Assert.Equal("ring:" + relation.Id, relation.IdFor("cluster"));
        await WaitForTraceAsync(_ => units.All(u => units.Where(o => o != u).All(o => Ended(u, "ring-relation-changed", o) == 1)), "every unit to know the other two");
        Assert.Equal(6, RelationFormulas.Trace(Repository).Count(l => l.Contains("ring-relation-joined", StringComparison.Ordinal) && l.EndsWith(" end", StringComparison.Ordinal)));

        Assert.IsType<ServiceDestroyed>(await Env.AskAsync<object>(new DestroyService("cluster"), TimeSpan.FromMinutes(2)));
        await LocalEnvironment.WaitUntilAsync(async () => (await new RelationStore(Env.Topology).ListAsync()).Count == 0, Deadline, "the peers relation to go with its service");
    }
}
