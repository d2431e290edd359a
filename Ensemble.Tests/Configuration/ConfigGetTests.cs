using Ensemble.Services;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.Configuration;

/// <summary>What config-changed reads with config-get, on units on two machines: the new value after every set.</summary>
public sealed class ConfigGetTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    [Fact]
    public async Task Every_unit_reads_the_new_value_with_config_get_in_the_config_changed_hook_that_set_runs()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "web", 1, [.. TestFormulas.StandardHooks, "config-changed"], new Dictionary<string, string>
        {
            ["config.yaml"] = "options:\n  title: {type: string, default: hello}\n  port: {type: int, default: 8080}\n",
        });
        Directory.CreateDirectory(control);
        File.WriteAllText(Path.Combine(control, "config-changed.sh"),
            "echo \"$(config-get title) $(config-get port) $(config-get --format json | tr -d ' \\n')\" >> \"$ENSEMBLE_UNIT_DATA_DIR/seen\"\n");
        var units = await DeployAsync("web", 2);
        var seen = new Dictionary<string, string>();
        foreach (var unit in units) seen[unit] = Path.Combine(await DataDirAsync(unit), "seen");
        Assert.NotEqual((await Env.Topology.GetUnitAsync(units[0]))!.Machine, (await Env.Topology.GetUnitAsync(units[1]))!.Machine);
        foreach (var unit in units) Assert.Equal(["hello 8080 {\"port\":8080,\"title\":\"hello\"}"], File.ReadAllLines(seen[unit]));

        Assert.IsType<ConfigSet>(await Env.AskAsync<object>(new SetConfig("web", new Dictionary<string, string> { ["title"] = "Blog", ["port"] = "81" })));
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(units.All(u => File.ReadAllLines(seen[u]).Length == 2)), Deadline, "config-changed on every unit");
        foreach (var unit in units) Assert.Equal("Blog 81 {\"port\":81,\"title\":\"Blog\"}", File.ReadAllLines(seen[unit])[1]);

        // A wrong type is refused and nothing runs.
        var refused = Assert.IsType<CommandRejected>(await Env.AskAsync<object>(new SetConfig("web", new Dictionary<string, string> { ["port"] = "eighty" })));
        Assert.Contains("port", refused.Reason, StringComparison.Ordinal);
        Assert.Equal("Blog", (await Env.Topology.EffectiveConfigAsync("web"))["title"]);
    }
}
