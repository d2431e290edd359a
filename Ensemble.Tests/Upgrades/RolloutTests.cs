using Ensemble.Formulas;
using Ensemble.Tests.Support;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

/// <summary>How an upgrade is chosen and rolled out: revisions, subsets, parallelism, refusals, the author's loop.</summary>
public sealed class RolloutTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    private string Control => TestFormulas.ControlDirectory(Repository);

    [Fact]
    public async Task At_most_max_parallel_units_upgrade_at_once()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 6);
        TestFormulas.Write(Repository, "web", 2);
        File.Delete(Path.Combine(Control, "shared.log"));

        await Env.UpgradeAsync("web", maxParallel: 2);
        await WaitForUnitsAsync(units, u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "all units on revision 2");
        await WaitForUpgradeToEndAsync("web");

        // A unit's upgrade spans its stop hook's start to its new start hook's end.
        var inFlight = 0;
        var most = 0;
        foreach (var line in File.ReadAllLines(Path.Combine(Control, "shared.log")))
        {
            if (line.EndsWith(" stop 1 begin", StringComparison.Ordinal)) most = Math.Max(most, ++inFlight);
            if (line.EndsWith(" start 2 end", StringComparison.Ordinal)) inFlight--;
        }
        Assert.InRange(most, 1, 2);
    }

    [Fact]
    public async Task An_upgrade_asked_for_while_units_are_still_deploying_waits_for_them()
    {
        TestFormulas.Write(Repository, "web", 1);
        File.WriteAllText(Path.Combine(Control, "hold-install"), "");
        var deployed = Assert.IsType<ServiceDeployed>(await Env.DeployAsync("web", "web", Repository, 2));
        TestFormulas.Write(Repository, "web", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        File.Delete(Path.Combine(Control, "hold-install"));

        await WaitForUnitsAsync(deployed.Units, u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "all units on revision 2");
        await WaitForUpgradeToEndAsync("web");
        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("web"));
        Assert.False(status.Running);
    }

    [Fact]
    public async Task A_chosen_subset_upgrades_alone_and_a_later_upgrade_catches_up_the_rest()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 3);
        TestFormulas.Write(Repository, "web", 2);

        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web", units: ["web/1"]));
        Assert.Equal(["web/1"], started.Units);
        await WaitForUpgradeToEndAsync("web");
        Assert.Equal("local:web-2", (await Env.Topology.GetUnitAsync("web/1"))!.Formula);
        Assert.Equal("local:web-1", (await Env.Topology.GetUnitAsync("web/0"))!.Formula);
        Assert.Equal("local:web-1", (await Env.Topology.GetUnitAsync("web/2"))!.Formula);
        Assert.Null(await Env.Topology.GetUpgradeFlagAsync("web/0"));

        var rest = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        Assert.Equal(["web/0", "web/2"], rest.Units);
        await WaitForUnitsAsync(units, u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "all units on revision 2");
    }

    [Fact]
    public async Task A_second_upgrade_while_one_runs_is_refused_and_changes_nothing()
    {
        TestFormulas.Write(Repository, "web", 1);
        await DeployAsync("web", 2);
        TestFormulas.Write(Repository, "web", 2);
        File.WriteAllText(Path.Combine(Control, "hold-upgrade-formula"), "");
        await Env.UpgradeAsync("web");
        TestFormulas.Write(Repository, "web", 3);

        var rejected = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web"));
        Assert.Equal(RejectionKind.Conflict, rejected.Kind);
        Assert.Contains("already running", rejected.Reason);
        Assert.Equal("local:web-2", (await Env.Topology.GetServiceAsync("web"))!.Formula);

        File.Delete(Path.Combine(Control, "hold-upgrade-formula"));
        await WaitForUpgradeToEndAsync("web");
    }

    [Fact]
    public async Task No_newer_revision_is_refused_and_writes_nothing()
    {
        TestFormulas.Write(Repository, "web", 1);
        await DeployAsync("web", 2);
        var writes = Env.Server.WriteCount;

        var rejected = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web"));
        Assert.Equal(RejectionKind.NoNewerRevision, rejected.Kind);
        Assert.Contains("no newer revision of formula 'web'", rejected.Reason);
        Assert.Equal(writes, Env.Server.WriteCount);
    }

    [Fact]
    public async Task Bad_requests_are_refused_with_a_reason_and_change_nothing()
    {
        TestFormulas.Write(Repository, "web", 1);
        await DeployAsync("web", 1);
        TestFormulas.Write(Repository, "web", 2);
        var writes = Env.Server.WriteCount;

        var unknownService = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("nope"));
        Assert.Equal(RejectionKind.NotFound, unknownService.Kind);
        var unknownUnit = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web", units: ["web/9"]));
        Assert.Contains("web/9", unknownUnit.Reason);
        var badParallel = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web", maxParallel: 0));
        Assert.Equal(RejectionKind.InvalidInput, badParallel.Kind);
        var missingRevision = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web", revision: 7));
        Assert.Contains("revision 7", missingRevision.Reason);
        var planned = Assert.IsType<UpgradePlanned>(await Env.UpgradeAsync("web", dryRun: true));
        Assert.Equal(new FormulaId("web", 2), planned.To);
        File.WriteAllText(Path.Combine(Repository, "web", "metadata.yaml"), "name: web\nrevision: [3\n");
        var malformed = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web"));
        Assert.Equal(RejectionKind.InvalidFormula, malformed.Kind);
        Assert.Contains("metadata.yaml", malformed.Reason);

        Assert.Equal(writes, Env.Server.WriteCount);
        Assert.Equal("local:web-1", (await Env.Topology.GetServiceAsync("web"))!.Formula);
    }

    [Fact]
    public async Task An_edited_formula_with_the_same_revision_is_deployed_as_the_next_revision()
    {
        var dir = TestFormulas.Write(Repository, "web", 1);
        var unit = (await DeployAsync("web", 1)).Single();
        var hook = Path.Combine(dir, "hooks", "upgrade-formula");
        File.WriteAllText(hook, File.ReadAllText(hook).Replace("#!/bin/sh\n", "#!/bin/sh\necho edited >> \"$ENSEMBLE_UNIT_DATA_DIR/hooks.log\"\n"));

        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        Assert.True(started.RevisionBumped);
        Assert.Equal(new FormulaId("web", 2), started.To);
        await WaitForUnitsAsync([unit], u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "the unit on revision 2");
        Assert.Contains("edited", TestFormulas.HookTrace(await DataDirAsync(unit)));
        Assert.Contains("revision: 1", File.ReadAllText(Path.Combine(dir, "metadata.yaml")));
        await WaitForUpgradeToEndAsync("web");

        var again = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web"));
        Assert.Equal(RejectionKind.NoNewerRevision, again.Kind);
    }

    [Fact]
    public async Task A_failed_unit_halts_a_rolling_upgrade_and_the_rest_keep_the_old_revision()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 4);
        File.WriteAllText(Path.Combine(await DataDirAsync("web/0"), "fail-upgrade-formula"), "");
        TestFormulas.Write(Repository, "web", 2);
        var watcher = CreateTestProbe();
        Env.Services.Tell(new WatchUpgrade("web"), watcher);

        await Env.UpgradeAsync("web", maxParallel: 1);
        var finished = watcher.FishForMessage<UpgradeFinished>(_ => true, TimeSpan.FromSeconds(60));
        Assert.Equal(["web/0"], finished.Failed.Keys);
        Assert.Equal(["web/1", "web/2", "web/3"], finished.NotStarted);
        foreach (var unit in units.Skip(1))
        {
            Assert.Equal("local:web-1", (await Env.Topology.GetUnitAsync(unit))!.Formula);
            Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
        }
    }
}
