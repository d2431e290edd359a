using Ensemble.Tests.Support;
using Ensemble.Topology;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

/// <summary>Marks each injected crash in the unit's hook trace, so a test can tell what ran after the last one.</summary>
internal sealed class TracedCrashes(string unitsDirectory) : IUnitFaults
{
    public CrashFaults Crashes { get; } = new();

    public void At(string unit, UnitStep step, StepPoint point)
    {
        try
        {
            Crashes.At(unit, step, point);
        }
        catch (InjectedCrashException)
        {
            var data = UnitPaths.For(unitsDirectory, unit).DataDirectory;
            Directory.CreateDirectory(data);
            File.AppendAllText(Path.Combine(data, "hooks.log"), $"CRASH {point} {step}\n");
            throw;
        }
    }
}

/// <summary>An agent crash at any step of an upgrade ends with the unit on the new revision and the store consistent.</summary>
public sealed class AgentCrashTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private TracedCrashes _faults = null!;

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults)
    {
        _faults = new TracedCrashes(UnitPaths.UnitsDirectory(UnitPaths.MachineDirectory(defaults.Directory!, "m0")));
        return defaults with { Faults = _faults };
    }

    public static TheoryData<UnitStep, StepPoint> UpgradeSteps()
    {
        var data = new TheoryData<UnitStep, StepPoint>();
        foreach (var step in new[] { UnitStep.Download, UnitStep.Stop, UnitStep.Extract, UnitStep.UpgradeHook, UnitStep.Start, UnitStep.Record })
        foreach (var point in new[] { StepPoint.Before, StepPoint.After })
            data.Add(step, point);
        return data;
    }

    [Theory]
    [MemberData(nameof(UpgradeSteps))]
    public async Task A_crash_at_any_upgrade_step_still_ends_on_the_new_revision(UnitStep step, StepPoint point)
    {
        TestFormulas.Write(Repository, "svc", 1, extraFiles: new Dictionary<string, string> { ["old-only"] = "x" });
        var unit = (await DeployAsync("svc", 1)).Single();
        var data = await DataDirAsync(unit);
        File.WriteAllText(Path.Combine(data, "keep"), "data");
        TestFormulas.Write(Repository, "svc", 2);

        _faults.Crashes.CrashAt(step, point, unit);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("svc"));
        await WaitForUnitsAsync([unit], u => u.Formula == "local:svc-2" && u.State == UnitPhase.Running, "the unit on revision 2");
        await WaitForUpgradeToEndAsync("svc");

        Assert.Equal(1, _faults.Crashes.Crashes);
        var trace = TestFormulas.HookTrace(data);
        var lastCrash = trace.ToList().FindLastIndex(l => l.StartsWith("CRASH", StringComparison.Ordinal));
        Assert.True(lastCrash >= 0, "the crash must have happened");
        var afterCrash = trace.Skip(lastCrash + 1).ToList();
        var upgradeRuns = trace.Count(l => l == "upgrade-formula 2 end");
        // The hook completes exactly once after the last crash, unless it had already completed before it.
        Assert.Equal(step == UnitStep.UpgradeHook && point == StepPoint.After ? 2 : 1, upgradeRuns);
        Assert.True(afterCrash.Count(l => l == "upgrade-formula 2 end") <= 1);
        Assert.Equal("start 2 end", trace.Last(l => !l.StartsWith("CRASH", StringComparison.Ordinal)));
        Assert.DoesNotContain(trace, l => l.EndsWith("begin", StringComparison.Ordinal) && !trace.Contains(l.Replace("begin", "end")));

        var paths = await Env.UnitPathsAsync(unit);
        Assert.Equal("data", File.ReadAllText(Path.Combine(data, "keep")));
        Assert.False(File.Exists(Path.Combine(paths.FormulaDirectory, "old-only")));
        Assert.False(Directory.Exists(paths.StagingDirectory));
        Assert.False(Directory.Exists(paths.RetiredDirectory));
        Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
        var state = UnitStateFile.Load(paths)!;
        Assert.Equal(UnitPhase.Running, state.Phase);
        Assert.Equal(UnitOperation.None, state.Operation);
        Assert.Equal(2, state.Current!.Id.Revision);
    }

    [Theory]
    [InlineData(UnitStep.Install, StepPoint.Before)]
    [InlineData(UnitStep.Install, StepPoint.After)]
    [InlineData(UnitStep.Start, StepPoint.After)]
    public async Task A_crash_during_deploy_still_ends_running(UnitStep step, StepPoint point)
    {
        TestFormulas.Write(Repository, "svc", 1);
        _faults.Crashes.CrashAt(step, point);
        var units = await DeployAsync("svc", 2);
        Assert.Equal(1, _faults.Crashes.Crashes);
        foreach (var unit in units)
            Assert.Equal("start 1 end", TestFormulas.HookTrace(await DataDirAsync(unit))[^1]);
    }

    [Fact]
    public async Task A_restarted_machine_agent_resumes_its_units_from_their_state_files()
    {
        TestFormulas.Write(Repository, "svc", 1);
        var unit = (await DeployAsync("svc", 1)).Single();
        File.WriteAllText(Path.Combine(TestFormulas.ControlDirectory(Repository), "hold-upgrade-formula"), "");
        TestFormulas.Write(Repository, "svc", 2);
        await Env.UpgradeAsync("svc");
        var data = await DataDirAsync(unit);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(data).Contains("upgrade-formula 2 begin")),
            Deadline, "the upgrade hook to start");

        await Env.StopMachineAsync("m0");
        File.Delete(Path.Combine(TestFormulas.ControlDirectory(Repository), "hold-upgrade-formula"));
        await Env.StartMachineAsync("m0");

        await WaitForUnitsAsync([unit], u => u.Formula == "local:svc-2" && u.State == UnitPhase.Running, "the unit on revision 2");
        var trace = TestFormulas.HookTrace(data);
        Assert.Equal(2, trace.Count(l => l == "upgrade-formula 2 begin"));
        Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 end"));
        Assert.Equal("start 2 end", trace[^1]);
    }
}

/// <summary>A unit agent that keeps crashing is parked in an error state instead of crash-looping.</summary>
public sealed class CrashLoopTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private sealed class AlwaysCrash : IUnitFaults
    {
        public volatile bool Armed;
        public int Crashes;

        public void At(string unit, UnitStep step, StepPoint point)
        {
            if (!Armed || step != UnitStep.Stop || point != StepPoint.Before) return;
            Interlocked.Increment(ref Crashes);
            throw new InjectedCrashException("injected: the stop step always crashes");
        }
    }

    private readonly AlwaysCrash _faults = new();

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Faults = _faults };

    [Fact]
    public async Task A_unit_agent_crashing_over_and_over_is_parked_in_the_steps_error_state_until_resolved()
    {
        TestFormulas.Write(Repository, "svc", 1);
        var unit = (await DeployAsync("svc", 1)).Single();
        TestFormulas.Write(Repository, "svc", 2);
        _faults.Armed = true;

        await Env.UpgradeAsync("svc");
        await WaitForUnitsAsync([unit], u => u.State == UnitPhase.StopError, "stop_error");
        var record = (await Env.Topology.GetUnitAsync(unit))!;
        Assert.Contains("failed more than", record.Error);
        Assert.Contains("the stop step always crashes", record.Error);
        Assert.Equal(MachineAgent.MaxRestarts + 1, _faults.Crashes);
        await WaitForUpgradeToEndAsync("svc");
        Assert.Equal(MachineAgent.MaxRestarts + 1, _faults.Crashes);

        _faults.Armed = false;
        Assert.IsType<Ensemble.Units.UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("svc", unit, Retry: true)));
        await WaitForUnitsAsync([unit], u => u.Formula == "local:svc-2" && u.State == UnitPhase.Running, "the unit on revision 2");
    }
}
