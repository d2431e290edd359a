using System.Diagnostics;
using System.Text.Json;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>A unit's disk that stops taking writes, as a real node meets it: an error state that says where, no restart storm.</summary>
public sealed class DiskFaultTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    /// <summary>The bound docs/architecture.md states for a disk fault to show as an error state.</summary>
    private static readonly TimeSpan ErrorWithin = TimeSpan.FromSeconds(20);

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        return result;
    }

    private async Task<JsonElement> UnitsAsync(string service)
    {
        var status = await Run("status", "--format", "json", "-e", "e2e");
        Assert.Equal(0, status.ExitCode);
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("services").GetProperty(service).GetProperty("units");
    }

    private string UnitsDirectory => Path.GetDirectoryName(Path.GetDirectoryName(env.UnitDataDirectory("disk/0"))!)!;

    [Fact]
    public async Task A_unit_directory_made_read_only_mid_upgrade_ends_in_an_error_state_naming_the_path_and_recovers_with_resolved_retry()
    {
        TestFormulas.Write(env.Repository, "disk", 1);
        Assert.Equal(0, (await Run("deploy", "-e", "e2e", "--repository", env.Repository, "-n", "2", "--wait", "disk")).ExitCode);
        File.WriteAllText(Path.Combine(env.UnitDataDirectory("disk/1"), "orders.db"), "42 orders");
        var hold = Path.Combine(env.Control, "hold-upgrade-formula");
        File.WriteAllText(hold, "");
        TestFormulas.Write(env.Repository, "disk", 2);

        var waiting = env.Ensemble.RunAsync(TimeSpan.FromMinutes(3), "upgrade-formula", "-e", "e2e", "--wait", "disk");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(File.Exists(Path.Combine(env.Control, "shared.log"))
                && File.ReadAllLines(Path.Combine(env.Control, "shared.log")).Count(l => l.EndsWith("upgrade-formula 2 begin")) == 2),
            TimeSpan.FromSeconds(60), "both units to be in their upgrade-formula hook");

        CommandResult waited;
        var clock = Stopwatch.StartNew();
        using (new ReadOnlyMount(UnitsDirectory))
        {
            File.Delete(hold);
            waited = await waiting;
            output.WriteLine($"upgrade-formula --wait ended {clock.Elapsed} after the disk turned read-only:\n{waited}");
            Assert.True(clock.Elapsed < ErrorWithin, $"the disk fault took {clock.Elapsed} to end the wait");
            Assert.Equal(1, waited.ExitCode);

            foreach (var unit in (await UnitsAsync("disk")).EnumerateObject())
            {
                Assert.Equal("start_error", unit.Value.GetProperty("state").GetString());
                var error = unit.Value.GetProperty("error").GetString()!;
                Assert.Contains(Path.Combine(UnitsDirectory, unit.Name.Replace('/', '-'), "state.json"), error);
                Assert.Contains("read-only file system", error);
                Assert.Contains($"ensemble resolved --retry {unit.Name}", error);
            }
            // Still in the error state after a while: nothing restarts the unit agents behind the operator's back.
            var agentLog = File.ReadAllText(Path.Combine(env.Root, "home", "environments", "e2e", "agent.log"));
            Assert.DoesNotContain("unit agent failed, restarting", agentLog);
        }

        foreach (var unit in new[] { "disk/0", "disk/1" })
            Assert.Equal(0, (await Run("resolved", "-e", "e2e", "--retry", unit)).ExitCode);
        await LocalEnvironment.WaitUntilAsync(async () => (await UnitsAsync("disk")).EnumerateObject().All(u =>
                u.Value.GetProperty("formula").GetString() == "local:disk-2" && u.Value.GetProperty("state").GetString() == "running"),
            TimeSpan.FromSeconds(60), "both units to run revision 2");
        Assert.Equal("42 orders", File.ReadAllText(Path.Combine(env.UnitDataDirectory("disk/1"), "orders.db")));
    }

    [Fact]
    public async Task An_upgrade_while_the_data_directory_is_read_only_names_the_formula_storage_and_changes_nothing()
    {
        TestFormulas.Write(env.Repository, "tidy", 1);
        Assert.Equal(0, (await Run("deploy", "-e", "e2e", "--repository", env.Repository, "--wait", "tidy")).ExitCode);
        TestFormulas.Write(env.Repository, "tidy", 2);
        var dataDirectory = Path.Combine(env.Root, "home", "environments", "e2e", "data");
        var before = (await Run("status", "--format", "json", "-e", "e2e")).Stdout;

        using (new ReadOnlyMount(dataDirectory))
        {
            var refused = await Run("upgrade-formula", "-e", "e2e", "tidy");
            Assert.Equal(7, refused.ExitCode);
            var line = Assert.Single(refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"cannot store local:tidy-2 in the formula storage {Path.Combine(dataDirectory, "formula-storage")}", line);
            Assert.Contains("read-only file system", line, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("make the environment's data directory writable", line);
        }

        Assert.Equal(before, (await Run("status", "--format", "json", "-e", "e2e")).Stdout);
        Assert.Equal(0, (await Run("upgrade-formula", "-e", "e2e", "--wait", "tidy")).ExitCode);
    }
}
