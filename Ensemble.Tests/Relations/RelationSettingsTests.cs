using Akka.Actor;
using Ensemble.Relations;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Relations;

/// <summary>
/// Settings across a relation through the hook tools, with real hooks on two machines: written in one unit's hook,
/// seen by the other only after that hook exited 0, never when it failed; the upgrade hook lists its unit's relations
/// and reads a remote setting with -r.
/// </summary>
public sealed class RelationSettingsTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    private string Control => TestFormulas.ControlDirectory(Repository);

    private void Script(string hook, string body)
    {
        Directory.CreateDirectory(Control);
        File.WriteAllText(Path.Combine(Control, hook + ".sh"), body + "\n");
    }

    private async Task<int> RelateAsync()
    {
        RelationFormulas.Write(Repository, "db", 1, ("provides", "server", "mysql"));
        RelationFormulas.Write(Repository, "web", 1, ("requires", "database", "mysql"));
        await DeployAsync("db", 1);
        await DeployAsync("web", 1);
        var added = Assert.IsType<RelationReplies.RelationAdded>(await Env.Services.Ask<object>(new RelationRequests.AddRelation("web", "db"), TimeSpan.FromSeconds(30)));
        return added.Id;
    }

    private Task WaitAsync(Func<bool> condition, string what) => LocalEnvironment.WaitUntilAsync(() => Task.FromResult(condition()), Deadline, what);

    private async Task<IReadOnlyDictionary<string, string>> SettingsAsync(int relation, string unit) =>
        (await new RelationStore(Env.Topology).GetMemberAsync(relation, unit))?.Settings ?? new Dictionary<string, string>();

    [Fact]
    public async Task Settings_written_in_a_hook_reach_the_other_side_only_after_it_exited_0()
    {
        var seen = Path.Combine(Control, "seen");
        Script("server-relation-joined", """
            relation-set host="$(unit-get private-address)" password=s3cret
            while [ -f "$ctl/hold-after-set" ]; do sleep 0.05; done
            """);
        Script("database-relation-changed", $"""echo "$ENSEMBLE_UNIT_NAME $(relation-get host) $(relation-get password)" >> "{seen}" """);
        File.WriteAllText(Path.Combine(Control, "hold-after-set"), "");
        var relation = await RelateAsync();
        await WaitAsync(() => RelationFormulas.Trace(Repository).Any(l => l.StartsWith("db/0 server-relation-joined", StringComparison.Ordinal)), "db/0's joined hook to begin");
        await WaitAsync(() => File.Exists(Path.Combine(Control, "relations.log")) && RelationFormulas.Ended(Repository, "web/0", "database-relation-changed", "db/0") == 1, "web/0 to see db/0 before db/0 said anything");

        // db/0 has called relation-set and is still running: nothing is committed, web/0 saw empty settings.
        Assert.Empty(await SettingsAsync(relation, "db/0"));
        Assert.Equal(["web/0  "], File.ReadAllLines(seen));

        File.Delete(Path.Combine(Control, "hold-after-set"));
        await WaitAsync(() => File.ReadAllLines(seen).Length == 2, "web/0 to be told of db/0's settings");
        Assert.Equal("web/0 127.0.0.1 s3cret", File.ReadAllLines(seen)[1]);
        Assert.Equal("s3cret", (await SettingsAsync(relation, "db/0"))["password"]);
    }

    [Fact]
    public async Task What_a_failing_hook_wrote_is_never_seen_and_resolved_retry_commits_what_the_retry_writes()
    {
        Script("server-relation-joined", """
            relation-set attempt="$(cat "$ctl/attempt" 2>/dev/null || echo first)"
            [ -f "$ctl/attempt" ] || exit 5
            """);
        var relation = await RelateAsync();
        await WaitForUnitsAsync(["db/0"], u => u.Error is not null, "db/0 to show its failed joined hook");
        Assert.Empty(await SettingsAsync(relation, "db/0"));
        Assert.Equal(0, RelationFormulas.Ended(Repository, "web/0", "database-relation-changed", "db/0") - 1);

        File.WriteAllText(Path.Combine(Control, "attempt"), "second");
        Assert.IsType<Ensemble.Units.UnitReplies.UnitResolved>(await Env.Services.Ask<object>(new Ensemble.Services.ServiceRequests.ResolveUnit("db", "db/0", Retry: true), TimeSpan.FromSeconds(30)));
        await LocalEnvironment.WaitUntilAsync(async () => (await SettingsAsync(relation, "db/0")).GetValueOrDefault("attempt") == "second", Deadline, "the retry's setting to be committed");
        await WaitAsync(() => RelationFormulas.Ended(Repository, "web/0", "database-relation-changed", "db/0") == 2, "web/0 to be told of it");
    }

    [Fact]
    public async Task The_upgrade_hook_lists_every_relation_of_its_unit_and_reads_a_remote_setting_with_r()
    {
        var listed = Path.Combine(Control, "listed");
        Script("server-relation-joined", "relation-set greeting=\"hello from $ENSEMBLE_UNIT_NAME\"");
        var relation = await RelateAsync();
        await LocalEnvironment.WaitUntilAsync(async () => (await SettingsAsync(relation, "db/0")).ContainsKey("greeting"), Deadline, "db/0's greeting");
        await WaitAsync(() => RelationFormulas.Ended(Repository, "web/0", "database-relation-changed", "db/0") == 2, "web/0 to be told of it");

        Script("upgrade-formula", $$"""
            [ "$ENSEMBLE_UNIT_NAME" = "web/0" ] || exit 0
            if relation-get greeting db/0 2>"{{listed}}.err"; then echo "a default relation in upgrade-formula" >> "{{listed}}"; exit 9; fi
            for id in $(relation-ids database); do
              echo "$id: $(relation-list -r "$id" | tr '\n' ' ')" >> "{{listed}}"
              echo "$id: $(relation-get -r "$id" greeting db/0)" >> "{{listed}}"
            done
            echo "by name: $(relation-list database | tr '\n' ' ')" >> "{{listed}}"
            """);
        RelationFormulas.Write(Repository, "web", 2, ("requires", "database", "mysql"));
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        await WaitForUpgradeToEndAsync("web");
        await WaitForUnitsAsync(["web/0"], u => u.Formula == "local:web-2" && u.Error is null, "web/0 on revision 2");

        Assert.Equal([$"database:{relation}: db/0 ", $"database:{relation}: hello from db/0", "by name: db/0 "], File.ReadAllLines(listed));
        Assert.Contains("-r", File.ReadAllText(listed + ".err"), StringComparison.Ordinal);
    }
}
