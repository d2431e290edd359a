using Ensemble.Services;
using Ensemble.TestKit;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;

namespace MyFormulas.Tests;

/// <summary>Three units of a formula on two simulated machines; one unit's upgrade hook fails once.</summary>
public sealed class RollingUpgradeExample(ITestOutputHelper output) : EnvironmentTest(output)
{
    private readonly HookFaults _hooks = new();

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { Machines = 2, HookFaults = _hooks };

    [Fact]
    public async Task A_failing_upgrade_hook_halts_the_rollout_and_resolved_retry_finishes_it()
    {
        TestFormulas.Write(Repository, "web", revision: 1);
        await DeployAsync("web", units: 3);
        TestFormulas.Write(Repository, "web", revision: 2);
        _hooks.FailNext("upgrade-formula", exitCode: 3, unit: "web/0");

        // One unit at a time: the failure of the first halts the rollout.
        await Env.UpgradeAsync("web", maxParallel: 1);
        await WaitForUpgradeToEndAsync("web");
        Assert.Equal(UnitPhase.UpgradeError, (await Env.Topology.GetUnitAsync("web/0"))!.State);
        Assert.Equal("local:web-1", (await Env.Topology.GetUnitAsync("web/2"))!.Formula);

        await Env.AskAsync<object>(new ServiceRequests.ResolveUnit("web", "web/0", Retry: true));
        await WaitForUnitsAsync(["web/0"], u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "web/0 on revision 2");
        Assert.Contains("upgrade-formula 2 end", TestFormulas.HookTrace(await DataDirAsync("web/0")));
    }
}
