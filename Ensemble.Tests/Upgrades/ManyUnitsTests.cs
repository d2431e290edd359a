using Ensemble.Tests.Support;
using Ensemble.Topology;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Tests.Upgrades;

/// <summary>Fifty units on three machines upgraded at once through download failures, agent crashes and failing hooks.</summary>
public sealed class ManyUnitsTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private readonly List<FaultyFormulaStorage> _storages = [];
    private readonly CrashFaults _crashes = new();

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with
    {
        Machines = 3,
        Faults = _crashes,
        AgentStorage = inner =>
        {
            var faulty = new FaultyFormulaStorage(inner);
            lock (_storages) _storages.Add(faulty);
            return faulty;
        },
    };

    [Fact]
    public async Task Fifty_units_upgrade_through_faults_and_the_store_ends_consistent()
    {
        TestFormulas.Write(Repository, "farm", 1);
        var units = await DeployAsync("farm", 50);
        var broken = new[] { "farm/7", "farm/31" };
        foreach (var unit in broken)
            File.WriteAllText(Path.Combine(await DataDirAsync(unit), "fail-upgrade-formula"), "");
        foreach (var storage in _storages) storage.FailNext(2);
        _crashes.CrashAt(UnitStep.Stop, StepPoint.After, "farm/3")
            .CrashAt(UnitStep.Extract, StepPoint.Before, "farm/12")
            .CrashAt(UnitStep.UpgradeHook, StepPoint.After, "farm/25")
            .CrashAt(UnitStep.Record, StepPoint.Before, "farm/49");
        TestFormulas.Write(Repository, "farm", 2);

        var watcher = CreateTestProbe();
        Env.Services.Tell(new WatchUpgrade("farm"), watcher);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("farm"));
        var finished = watcher.FishForMessage<UpgradeFinished>(_ => true, TimeSpan.FromSeconds(120));
        Assert.Equal(broken.Order(StringComparer.Ordinal), finished.Failed.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(48, finished.Succeeded.Count);
        Assert.Equal(4, _crashes.Crashes);

        foreach (var unit in broken)
        {
            File.Delete(Path.Combine(await DataDirAsync(unit), "fail-upgrade-formula"));
            Assert.IsType<UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("farm", unit, Retry: true)));
        }
        await WaitForUnitsAsync(units, u => u.Formula == "local:farm-2" && u.State == UnitPhase.Running && u.Error is null,
            "all 50 units on revision 2", TimeSpan.FromSeconds(120));

        foreach (var unit in units)
        {
            Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
            var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
            Assert.Equal("start 2 end", trace[^1]);
            Assert.Equal(unit == "farm/25" ? 2 : 1, trace.Count(l => l == "upgrade-formula 2 end"));
        }
        // Each machine fetched revision 2 once, however many of its units use it (and however many retries it took).
        foreach (var machine in Env.Machines)
            Assert.Equal(2, Env.Machine(machine).Cache.Downloads);
    }
}
