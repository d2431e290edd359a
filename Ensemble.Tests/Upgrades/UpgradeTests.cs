using Ensemble.Formulas;
using Ensemble.Services;
using Ensemble.Tests.Support;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

public sealed class UpgradeTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { Machines = 2 };

    [Fact]
    public async Task Upgrade_replaces_only_the_formula_directory_and_runs_the_hooks_in_order()
    {
        TestFormulas.Write(Repository, "web", 1, extraFiles: new Dictionary<string, string> { ["templates/old-only.conf"] = "old" });
        var units = await DeployAsync("web", 3);
        foreach (var unit in units)
            await File.WriteAllTextAsync(Path.Combine(await DataDirAsync(unit), "database.db"), "precious " + unit);

        TestFormulas.Write(Repository, "web", 2, extraFiles: new Dictionary<string, string> { ["templates/new-only.conf"] = "new" });
        var writesBefore = Env.Server.WriteCount;
        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        Assert.Equal(new FormulaId("web", 1), started.From);
        Assert.Equal(new FormulaId("web", 2), started.To);

        await WaitForUnitsAsync(units, u => u.Formula == "local:web-2", "units on revision 2");
        await WaitForUpgradeToEndAsync("web");

        foreach (var unit in units)
        {
            var data = await DataDirAsync(unit);
            var formula = await FormulaDirAsync(unit);
            Assert.Equal("precious " + unit, await File.ReadAllTextAsync(Path.Combine(data, "database.db")));
            Assert.False(File.Exists(Path.Combine(formula, "templates", "old-only.conf")), "a file only the old revision had must be gone");
            Assert.True(File.Exists(Path.Combine(formula, "templates", "new-only.conf")));
            Assert.Contains("revision: 2", await File.ReadAllTextAsync(Path.Combine(formula, "metadata.yaml")));
            Assert.Equal(
                ["install 1 begin", "install 1 end", "start 1 begin", "start 1 end",
                 "stop 1 begin", "stop 1 end", "upgrade-formula 2 begin", "upgrade-formula 2 end", "start 2 begin", "start 2 end"],
                TestFormulas.HookTrace(data));
            Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
            var record = await Env.Topology.GetUnitAsync(unit);
            Assert.Equal(UnitPhase.Running, record!.State);
            var log = await File.ReadAllTextAsync((await Env.UnitPathsAsync(unit)).LogPath);
            Assert.Matches(@"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[upgrade-formula\] running upgrade-formula of " + unit + " at revision 2", log);
        }
        Assert.Equal("local:web-2", (await Env.Topology.GetServiceAsync("web"))!.Formula);
        // The budget: the flag, then one atomic write at the end, per unit; plus the service's own records.
        var perUnit = (Env.Server.WriteCount - writesBefore - 2) / (double)units.Count;
        Assert.True(perUnit <= 2, $"store writes per unit upgrade: {perUnit}");
    }
}
