using Ensemble.Tests.Support;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Tests.Upgrades;

/// <summary>Downloads are verified and retried with backoff; a bundle that never verifies is never unpacked.</summary>
public sealed class DownloadFaultTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private FaultyFormulaStorage _storage = null!;

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { AgentStorage = inner => _storage = new FaultyFormulaStorage(inner) };

    [Fact]
    public async Task Failed_and_corrupt_downloads_are_retried_and_the_upgrade_completes()
    {
        TestFormulas.Write(Repository, "app", 1);
        var unit = (await DeployAsync("app", 1)).Single();
        TestFormulas.Write(Repository, "app", 2);
        _storage.FailNext(1).CorruptNext(1);
        var gets = _storage.Gets;

        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync([unit], u => u.Formula == "local:app-2" && u.State == UnitPhase.Running, "the unit on revision 2");
        Assert.Equal(3, _storage.Gets - gets);
    }

    [Fact]
    public async Task A_bundle_that_never_verifies_is_never_unpacked_and_nothing_is_stopped()
    {
        TestFormulas.Write(Repository, "app", 1);
        var unit = (await DeployAsync("app", 1)).Single();
        TestFormulas.Write(Repository, "app", 2);
        _storage.CorruptNext(1000);

        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.UpgradeError, "upgrade_error");
        var record = (await Env.Topology.GetUnitAsync(unit))!;
        Assert.Contains("failed verification", record.Error);
        Assert.Equal("local:app-1", record.Formula);

        var paths = await Env.UnitPathsAsync(unit);
        Assert.Contains("revision: 1", File.ReadAllText(Path.Combine(paths.FormulaDirectory, "metadata.yaml")));
        Assert.False(Directory.Exists(paths.StagingDirectory));
        Assert.DoesNotContain(TestFormulas.HookTrace(paths.DataDirectory), l => l.StartsWith("stop", StringComparison.Ordinal));

        // Giving up leaves the unit running its old revision, its upgrade abandoned; a later upgrade-formula catches it up.
        Assert.IsType<UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("app", unit, Retry: false)));
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.Running && u.Formula == "local:app-1", "running on revision 1");
        await LocalEnvironment.WaitUntilAsync(async () => await Env.Topology.GetUpgradeFlagAsync(unit) is null, Deadline, "the flag to clear");

        _storage.CorruptNext(0);
        await WaitForUpgradeToEndAsync("app");
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("app"));
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.Running && u.Formula == "local:app-2", "running on revision 2");
    }
}

/// <summary>A coordinator crash mid-upgrade: the service and its sagas resume from the journal without redoing work.</summary>
public sealed class CoordinatorCrashTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    [Fact]
    public async Task The_upgrade_resumes_after_the_coordinators_restart_and_every_unit_upgrades_once()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "api", 1);
        var units = await DeployAsync("api", 3);
        TestFormulas.Write(Repository, "api", 2);
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");
        var writes = Env.Server.WriteCount;

        await Env.UpgradeAsync("api", maxParallel: 2);
        await LocalEnvironment.WaitUntilAsync(async () =>
            TestFormulas.HookTrace(await DataDirAsync("api/0")).Contains("upgrade-formula 2 begin")
            && TestFormulas.HookTrace(await DataDirAsync("api/1")).Contains("upgrade-formula 2 begin"),
            Deadline, "two units in their upgrade hook");

        await Env.RestartControllerAsync();
        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("api"));
        Assert.True(status.Running);
        File.Delete(Path.Combine(control, "hold-upgrade-formula"));

        await WaitForUnitsAsync(units, u => u.Formula == "local:api-2" && u.State == UnitPhase.Running, "all units on revision 2");
        await WaitForUpgradeToEndAsync("api");
        foreach (var unit in units)
        {
            var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
            Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 begin"));
            Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 end"));
            Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
        }
        // Two writes for the service record and formula, then the flag and the final multi per unit: no flag written twice.
        Assert.Equal(2 + 2 * units.Count, Env.Server.WriteCount - writes);
    }
}
