using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.Units;

/// <summary>The store out of reach while a unit records what it did: the unit waits it out with backoff, not a restart storm.</summary>
public sealed class StoreBackoffTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    [Fact]
    public async Task A_new_unit_that_cannot_record_that_it_runs_waits_for_the_store_and_status_then_shows_it_running()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "db", 1);
        File.WriteAllText(Path.Combine(control, "hold-start"), "");
        var deployed = Assert.IsType<ServiceDeployed>(await Env.DeployAsync("db", "db", Repository, 1));
        var unit = deployed.Units.Single();
        var paths = await Env.UnitPathsAsync(unit);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(paths.DataDirectory).Contains("start 1 begin")),
            Deadline, "the start hook to begin");

        Env.StoreOutage.Begin();
        try
        {
            File.Delete(Path.Combine(control, "hold-start"));
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(UnitStateFile.Load(paths) is { Phase: UnitPhase.Running, Operation: UnitOperation.Deploy }),
                Deadline, "the unit to reach the record step");
            var refusedAtRecord = Env.StoreOutage.Refused;
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Env.StoreOutage.Refused >= refusedAtRecord + 5),
                Deadline, "the store to refuse five more operations");
        }
        finally
        {
            Env.StoreOutage.End();
        }

        // Nothing resends a deploy: the unit agent itself must still be there to record it.
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.Running && u.Error is null, "status to show the unit running");
        Assert.Equal(UnitOperation.None, UnitStateFile.Load(paths)!.Operation);
        Assert.Single(TestFormulas.HookTrace(paths.DataDirectory), line => line == "start 1 end");
    }

    [Fact]
    public async Task A_unit_that_cannot_record_its_upgrade_waits_for_the_store_and_is_never_parked_in_an_error_state()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "db", 1);
        var unit = (await DeployAsync("db", 1)).Single();
        var paths = await Env.UnitPathsAsync(unit);
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");
        TestFormulas.Write(Repository, "db", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("db"));
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(paths.DataDirectory).Contains("upgrade-formula 2 begin")),
            Deadline, "the upgrade hook to begin");

        Env.StoreOutage.Begin();
        try
        {
            File.Delete(Path.Combine(control, "hold-upgrade-formula"));
            // The unit runs the new formula and now only has to record it, which the store refuses.
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(UnitStateFile.Load(paths) is { Phase: UnitPhase.Running, Operation: UnitOperation.Upgrade }),
                Deadline, "the unit to reach the record step");
            var refusedAtRecord = Env.StoreOutage.Refused;
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Env.StoreOutage.Refused >= refusedAtRecord + 5),
                Deadline, "the store to refuse five more operations");
            Assert.Equal(UnitPhase.Running, UnitStateFile.Load(paths)!.Phase);
        }
        finally
        {
            Env.StoreOutage.End();
        }

        await WaitForUnitsAsync([unit], u => u.Formula == "local:db-2" && u.State == UnitPhase.Running && u.Error is null, "the upgrade recorded");
        await WaitForUpgradeToEndAsync("db");
        Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
        Assert.Single(TestFormulas.HookTrace(paths.DataDirectory), line => line == "upgrade-formula 2 end");
    }
}
