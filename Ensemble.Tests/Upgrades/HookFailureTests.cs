using Ensemble.Tests.Support;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Tests.Upgrades;

/// <summary>A hook that fails puts its unit in the matching error state, where it stays until resolved.</summary>
public sealed class HookFailureTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private string Control => TestFormulas.ControlDirectory(Repository);

    private static int Count(IEnumerable<string> trace, string line) => trace.Count(l => l == line);

    [Theory]
    [InlineData("install", UnitPhase.InstallError)]
    [InlineData("start", UnitPhase.StartError)]
    public async Task A_failing_deploy_hook_stops_the_unit_in_its_error_state_and_retry_recovers_it(string hook, UnitPhase errorState)
    {
        TestFormulas.Write(Repository, "db", 1);
        File.WriteAllText(Path.Combine(Control, $"fail-{hook}"), "");
        var deployed = Assert.IsType<ServiceDeployed>(await Env.DeployAsync("db", "db", Repository, 1));
        var unit = deployed.Units.Single();

        await WaitForUnitsAsync([unit], u => u.State == errorState, errorState.ToString());
        var record = await Env.Topology.GetUnitAsync(unit);
        Assert.Contains($"hook '{hook}' exited with code 3", record!.Error);
        var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
        Assert.Equal($"{hook} 1 begin", trace[^1]);

        File.Delete(Path.Combine(Control, $"fail-{hook}"));
        var resolved = await Env.AskAsync<object>(new ResolveUnit("db", unit, Retry: true));
        Assert.IsType<UnitReplies.UnitResolved>(resolved);
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.Running && u.Error is null, "running");

        trace = TestFormulas.HookTrace(await DataDirAsync(unit));
        Assert.Equal(2, Count(trace, $"{hook} 1 begin"));
        Assert.Equal(1, Count(trace, $"{hook} 1 end"));
        Assert.Equal("start 1 end", trace[^1]);
    }

    [Theory]
    [InlineData("stop", UnitPhase.StopError)]
    [InlineData("upgrade-formula", UnitPhase.UpgradeError)]
    [InlineData("start", UnitPhase.StartError)]
    public async Task A_failing_upgrade_hook_stops_the_unit_in_its_error_state_and_retry_finishes_the_upgrade(string hook, UnitPhase errorState)
    {
        TestFormulas.Write(Repository, "db", 1);
        var units = await DeployAsync("db", 2);
        var failing = units[0];
        File.WriteAllText(Path.Combine(await DataDirAsync(failing), $"fail-{hook}"), "");

        TestFormulas.Write(Repository, "db", 2);
        var watcher = CreateTestProbe();
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("db"));
        await WaitForUnitsAsync([failing], u => u.State == errorState, errorState.ToString());
        await WaitForUnitsAsync([units[1]], u => u.Formula == "local:db-2", "the healthy unit to upgrade");
        await WaitForUpgradeToEndAsync("db");

        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("db"));
        Assert.False(status.Running);
        var record = await Env.Topology.GetUnitAsync(failing);
        Assert.Contains($"hook '{hook}' exited with code 3", record!.Error);
        Assert.NotNull(await Env.Topology.GetUpgradeFlagAsync(failing));
        var revisionOfHook = hook == "stop" ? 1 : 2;
        var trace = TestFormulas.HookTrace(await DataDirAsync(failing));
        Assert.Equal($"{hook} {revisionOfHook} begin", trace[^1]);

        File.Delete(Path.Combine(await DataDirAsync(failing), $"fail-{hook}"));
        Assert.IsType<UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("db", failing, Retry: true)));
        await WaitForUnitsAsync([failing], u => u.State == UnitPhase.Running && u.Formula == "local:db-2", "the unit to finish its upgrade");

        Assert.Null(await Env.Topology.GetUpgradeFlagAsync(failing));
        trace = TestFormulas.HookTrace(await DataDirAsync(failing));
        Assert.Equal(2, Count(trace, $"{hook} {revisionOfHook} begin"));
        Assert.Equal(1, Count(trace, "upgrade-formula 2 end"));
        Assert.Equal("start 2 end", trace[^1]);
    }

    [Fact]
    public async Task Resolved_without_retry_continues_after_the_failed_hook_without_running_it_again()
    {
        TestFormulas.Write(Repository, "db", 1);
        var unit = (await DeployAsync("db", 1)).Single();
        File.WriteAllText(Path.Combine(await DataDirAsync(unit), "fail-upgrade-formula"), "");
        TestFormulas.Write(Repository, "db", 2);
        await Env.UpgradeAsync("db");
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.UpgradeError, "upgrade_error");

        Assert.IsType<UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("db", unit, Retry: false)));
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.Running && u.Formula == "local:db-2", "running on revision 2");
        var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
        Assert.Equal(1, Count(trace, "upgrade-formula 2 begin"));
        Assert.Equal("start 2 end", trace[^1]);
    }

    [Fact]
    public async Task Resolving_a_unit_that_is_not_in_error_is_refused()
    {
        TestFormulas.Write(Repository, "db", 1);
        var unit = (await DeployAsync("db", 1)).Single();
        var reply = Assert.IsType<UnitReplies.UnitCommandRejected>(await Env.AskAsync<object>(new ResolveUnit("db", unit, Retry: true)));
        Assert.Contains("not in an error state", reply.Reason);
    }
}

/// <summary>A hook past its timeout is killed with everything it started, and its unit lands in the error state.</summary>
public sealed class HookTimeoutTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { Agent = defaults.Agent with { HookTimeout = TimeSpan.FromSeconds(2) } };

    [Fact]
    public async Task A_hook_past_its_timeout_is_killed_with_its_children_and_the_unit_goes_to_upgrade_error()
    {
        TestFormulas.Write(Repository, "app", 1);
        var unit = (await DeployAsync("app", 1)).Single();
        var dir = TestFormulas.Write(Repository, "app", 2);
        File.WriteAllText(Path.Combine(dir, "hooks", "upgrade-formula"), """
            #!/bin/sh
            sleep 120 &
            echo $! > "$ENSEMBLE_UNIT_DATA_DIR/child.pid"
            wait
            """);

        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.UpgradeError, "upgrade_error");
        Assert.Contains("timed out", (await Env.Topology.GetUnitAsync(unit))!.Error);

        var pid = File.ReadAllText(Path.Combine(await DataDirAsync(unit), "child.pid")).Trim();
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(!Directory.Exists($"/proc/{pid}")),
            TimeSpan.FromSeconds(10), "the hook's child process to be killed");
    }
}
