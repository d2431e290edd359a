using Ensemble.Configuration;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Configuration;

/// <summary>
/// set, get, deploy --config and upgrades in a real local environment: config-changed hooks are shell scripts whose
/// traces show when they ran, and the store shows what was set.
/// </summary>
public sealed class ServiceConfigurationTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    private static readonly string[] Hooks = [.. TestFormulas.StandardHooks, "config-changed"];

    private const string ConfigYaml = """
        options:
          title: {type: string, default: hello, description: The page title}
          port: {type: int, default: 8080}
          ratio: {type: float}
          debug: {type: boolean, default: false}

        """;

    private void WriteFormula(int revision, string config = ConfigYaml) =>
        TestFormulas.Write(Repository, "web", revision, Hooks, new Dictionary<string, string> { ["config.yaml"] = config });

    private async Task<int> ConfigChangedRunsAsync(string unit, int revision = 1) =>
        TestFormulas.HookTrace(await DataDirAsync(unit)).Count(l => l == $"config-changed {revision} end");

    private Task WaitForConfigChangedAsync(IEnumerable<string> units, int runs, int revision = 1) =>
        LocalEnvironment.WaitUntilAsync(async () =>
        {
            foreach (var unit in units)
                if (await ConfigChangedRunsAsync(unit, revision) < runs) return false;
            return true;
        }, Deadline, $"config-changed to have run {runs} times on every unit");

    [Fact]
    public async Task Config_changed_runs_after_install_and_before_start_on_every_unit()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 2);
        foreach (var unit in units)
            Assert.Equal(["install 1 begin", "install 1 end", "config-changed 1 begin", "config-changed 1 end", "start 1 begin", "start 1 end"],
                TestFormulas.HookTrace(await DataDirAsync(unit)));
        Assert.Equal(ServiceConfig.Empty.Version, (await Env.Topology.GetConfigAsync("web")).Version);
    }

    [Fact]
    public async Task Set_stores_the_values_and_runs_config_changed_once_on_every_unit()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 2);

        var set = await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81", ["title"] = "Blog" }));
        Assert.Equal(["port", "title"], set.Changed);
        Assert.Equal(1, set.Version);
        await WaitForConfigChangedAsync(units, 2);

        var effective = await Env.Topology.EffectiveConfigAsync("web");
        Assert.Equal(81L, effective["port"]);
        Assert.Equal("Blog", effective["title"]);
        Assert.Equal(false, effective["debug"]);
        Assert.Null(effective["ratio"]);

        // The same values again change nothing: no new version, so no hook; the next real change shows that.
        var again = await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81" }));
        Assert.Empty(again.Changed);
        Assert.Equal(1, again.Version);
        Assert.Equal(2, (await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["debug"] = "true" }))).Version);
        await WaitForConfigChangedAsync(units, 3);
        foreach (var unit in units) Assert.Equal(3, await ConfigChangedRunsAsync(unit));
    }

    [Fact]
    public async Task Bad_settings_are_refused_and_change_nothing()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 2);

        var unknown = await Env.AskAsync<CommandRejected>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81", ["colour"] = "red" }));
        Assert.Equal(RejectionKind.InvalidInput, unknown.Kind);
        Assert.Contains("'colour'", unknown.Reason);
        var wrongType = await Env.AskAsync<CommandRejected>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "eighty" }));
        Assert.Equal(RejectionKind.InvalidInput, wrongType.Kind);
        Assert.Contains("option 'port'", wrongType.Reason);
        Assert.Contains("'eighty'", wrongType.Reason);
        var notDeployed = await Env.AskAsync<CommandRejected>(new SetConfig("blog", new Dictionary<string, string> { ["port"] = "81" }));
        Assert.Equal(RejectionKind.NotFound, notDeployed.Kind);

        Assert.Equal(0, (await Env.Topology.GetConfigAsync("web")).Version);
        Assert.Empty((await Env.Topology.GetConfigAsync("web")).Values);
        // A good set afterwards runs the hook once: the refused ones ran none.
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["ratio"] = "0.5" }));
        await WaitForConfigChangedAsync(units, 2);
        foreach (var unit in units) Assert.Equal(2, await ConfigChangedRunsAsync(unit));
    }

    [Fact]
    public async Task Get_shows_every_option_with_its_value_default_and_whether_it_was_set()
    {
        WriteFormula(1);
        await DeployAsync("web", 1);
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81", ["ratio"] = "2" }));

        var view = await Env.AskAsync<ConfigView>(new GetConfig("web"));
        Assert.Equal("local:web-1", view.Formula.ToString());
        Assert.Equal(1, view.Version);
        Assert.Equal(
        [
            new ConfigEntry("debug", "boolean", "false", null, "false", false),
            new ConfigEntry("port", "int", "8080", null, "81", true),
            new ConfigEntry("ratio", "float", null, null, "2", true),
            new ConfigEntry("title", "string", "hello", "The page title", "hello", false),
        ], view.Options);

        // key= resets to the default.
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "" }));
        var reset = await Env.AskAsync<ConfigView>(new GetConfig("web"));
        Assert.Equal(new ConfigEntry("port", "int", "8080", null, "8080", false), reset.Options.Single(o => o.Name == "port"));
    }

    [Fact]
    public async Task Deploy_with_bad_settings_deploys_nothing()
    {
        WriteFormula(1);
        var refused = Assert.IsType<CommandRejected>(await Env.Client.DeployAsync("web", "web", Repository, 2,
            config: new Dictionary<string, string> { ["port"] = "eighty" }));
        Assert.Equal(RejectionKind.InvalidInput, refused.Kind);
        Assert.Contains("option 'port'", refused.Reason);
        Assert.Null(await Env.Topology.GetServiceAsync("web"));
        Assert.Empty(await Env.Topology.ListServicesAsync());

        // Good settings are in the store before the first unit runs config-changed.
        var deployed = Assert.IsType<ServiceDeployed>(await Env.Client.DeployAsync("web", "web", Repository, 1,
            config: new Dictionary<string, string> { ["port"] = "81", ["debug"] = "true" }));
        await WaitForUnitsAsync(deployed.Units, u => u.State == UnitPhase.Running, "the unit to run");
        var effective = await Env.Topology.EffectiveConfigAsync("web");
        Assert.Equal(81L, effective["port"]);
        Assert.Equal(true, effective["debug"]);
        Assert.Equal(1, await ConfigChangedRunsAsync(deployed.Units[0]));
    }

    [Fact]
    public async Task An_upgrade_keeps_compatible_values_and_reports_the_dropped_ones()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 2);
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81", ["title"] = "Blog", ["debug"] = "true", ["ratio"] = "0.5" }));
        await WaitForConfigChangedAsync(units, 2);

        WriteFormula(2, """
            options:
              title: {type: string, default: hello}
              port: {type: float, default: 8080}
              debug: {type: int, default: 0}

            """);
        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        Assert.Equal(["debug (now int)", "ratio (removed)"], started.DroppedOptions);
        await WaitForUnitsAsync(units, u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "all units on revision 2");
        await WaitForUpgradeToEndAsync("web");

        var effective = await Env.Topology.EffectiveConfigAsync("web");
        Assert.Equal(new Dictionary<string, object?> { ["title"] = "Blog", ["port"] = 81.0, ["debug"] = 0L }, effective);
        foreach (var unit in units)
        {
            var trace = TestFormulas.HookTrace(await DataDirAsync(unit)).ToList();
            var upgraded = trace.IndexOf("upgrade-formula 2 end");
            Assert.True(upgraded >= 0);
            Assert.Equal(["config-changed 2 begin", "config-changed 2 end", "start 2 begin", "start 2 end"], trace[(upgraded + 1)..].Where(l => l.Contains(" 2 ")).Take(4));
        }
    }

    [Fact]
    public async Task A_restarted_agent_runs_config_changed_once_for_a_set_it_missed_and_never_again_for_one_it_delivered()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 2);
        var onM0 = units[0];
        var onM1 = units[1];
        Assert.Equal("m0", (await Env.Topology.GetUnitAsync(onM0))!.Machine);
        Assert.Equal("m1", (await Env.Topology.GetUnitAsync(onM1))!.Machine);

        await Env.StopMachineAsync("m1");
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81" }));
        await WaitForConfigChangedAsync([onM0], 2);
        Assert.Equal(1, await ConfigChangedRunsAsync(onM1));

        await Env.StartMachineAsync("m1");
        await WaitForConfigChangedAsync([onM1], 2);
        // Both agents restarted: each has delivered version 1 already, so the next run is for version 2 alone.
        await Env.StopMachineAsync("m0");
        await Env.StartMachineAsync("m0");
        await Env.StopMachineAsync("m1");
        await Env.StartMachineAsync("m1");
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "82" }));
        await WaitForConfigChangedAsync(units, 3);
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            foreach (var unit in units)
                if (UnitStateFile.Load(await Env.UnitPathsAsync(unit))?.ConfigVersion != 2) return false;
            return true;
        }, Deadline, "every unit to have recorded configuration version 2");
        foreach (var unit in units) Assert.Equal(3, await ConfigChangedRunsAsync(unit));
    }

    [Fact]
    public async Task A_failing_config_changed_shows_as_the_units_error_until_resolved_with_retry()
    {
        WriteFormula(1);
        var unit = (await DeployAsync("web", 1)).Single();
        var data = await DataDirAsync(unit);
        File.WriteAllText(Path.Combine(data, "fail-config-changed"), "");

        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81" }));
        await WaitForUnitsAsync([unit], u => u.Error?.Contains("config-changed failed") == true, "the failure to show");
        Assert.Equal(UnitPhase.Running, (await Env.Topology.GetUnitAsync(unit))!.State);

        File.Delete(Path.Combine(data, "fail-config-changed"));
        Assert.IsType<UnitReplies.UnitResolved>(await Env.AskAsync<object>(new ResolveUnit("web", unit, Retry: true)));
        await WaitForConfigChangedAsync([unit], 2);
        await WaitForUnitsAsync([unit], u => u.Error is null && u.State == UnitPhase.Running, "the error to clear");
    }

    [Fact]
    public async Task An_upgrade_asked_for_while_config_changed_runs_waits_for_it()
    {
        WriteFormula(1);
        var unit = (await DeployAsync("web", 1)).Single();
        var control = TestFormulas.ControlDirectory(Repository);
        var hold = Path.Combine(control, "hold-config-changed");
        File.WriteAllText(hold, "");
        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81" }));
        await LocalEnvironment.WaitUntilAsync(async () => TestFormulas.HookTrace(await DataDirAsync(unit)).Count(l => l == "config-changed 1 begin") == 2,
            Deadline, "config-changed to be running");

        WriteFormula(2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        File.Delete(hold);
        await WaitForUnitsAsync([unit], u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "the unit on revision 2");

        // One hook of a unit at a time: the upgrade's stop began only after config-changed had ended.
        var trace = TestFormulas.HookTrace(await DataDirAsync(unit)).ToList();
        Assert.True(trace.LastIndexOf("config-changed 1 end") < trace.IndexOf("stop 1 begin"), string.Join("\n", trace));
    }

    [Fact]
    public async Task A_service_deployed_before_configuration_existed_reads_as_empty_and_takes_settings()
    {
        WriteFormula(1);
        var units = await DeployAsync("web", 1);
        await Env.ControllerSession.DeleteAsync(Env.Topology.ConfigPath("web"));
        Assert.Equal(ServiceConfig.Empty, await Env.Topology.GetConfigAsync("web"));

        await Env.AskAsync<ConfigSet>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81" }));
        await WaitForConfigChangedAsync(units, 2);
        Assert.Equal(81L, (await Env.Topology.EffectiveConfigAsync("web"))["port"]);

        await Env.AskAsync<ServiceDestroyed>(new DestroyService("web"), TimeSpan.FromMinutes(1));
        Assert.Null(await Env.ControllerSession.ExistsAsync(Env.Topology.ConfigPath("web")));
    }
}
