using System.Text.Json;
using Ensemble.Health;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// `ensemble health` through the installed command against a real node whose topology is in a ZooKeeper server the test
/// stops: 0 and every node healthy, 1 and one sentence naming the store while it is stopped (the health file says so
/// too), 0 again when it is back; --file reads a node's health file without a controller (3 missing, 1 stale).
/// </summary>
public sealed class HealthCommandTests(ZooKeeperEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<ZooKeeperEnvironmentProcess>
{
    private const string Env = ZooKeeperEnvironmentProcess.Name;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private string HealthFilePath => Path.Combine(env.Ensemble.EnvironmentDirectory(Env), "data", HealthFile.DefaultName);

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.False(result.HasStackTrace, result.ToString());
        return result;
    }

    private async Task<CommandResult> WaitForExitCodeAsync(int code, params string[] args)
    {
        CommandResult? last = null;
        await LocalEnvironment.WaitUntilAsync(async () => (last = await Run(args)).ExitCode == code, Deadline,
            $"'ensemble {string.Join(' ', args)}' to exit {code}");
        return last!;
    }

    [Fact]
    public async Task Health_is_0_while_every_node_is_healthy_1_naming_the_store_while_zookeeper_is_stopped_and_0_again()
    {
        var table = await WaitForExitCodeAsync(0, "health", "-e", Env);
        Assert.Contains("NODE", table.Stdout);
        Assert.Contains("controller", table.Stdout);
        Assert.Contains("healthy", table.Stdout);
        Assert.Equal("", table.Stderr);

        var json = await Run("health", "-e", Env, "--format", "json");
        Assert.Equal(0, json.ExitCode);
        using (var document = JsonDocument.Parse(json.Stdout))
        {
            Assert.Equal(Env, document.RootElement.GetProperty("environment").GetString());
            Assert.True(document.RootElement.GetProperty("healthy").GetBoolean());
            var node = Assert.Single(document.RootElement.GetProperty("nodes").EnumerateArray());
            Assert.Equal("Up", node.GetProperty("member-status").GetString());
            Assert.All(node.GetProperty("stores").EnumerateArray(), s => Assert.Equal(("zookeeper", "connected"),
                (s.GetProperty("backend").GetString(), s.GetProperty("state").GetString())));
            Assert.True(node.GetProperty("journal").GetProperty("reachable").GetBoolean());
        }
        var yaml = await Run("health", "-e", Env, "--format", "yaml");
        Assert.Equal(0, yaml.ExitCode);
        Assert.Contains("healthy: true", yaml.Stdout);

        var file = await WaitForExitCodeAsync(0, "health", "--file", HealthFilePath);
        Assert.StartsWith("healthy (checked ", file.Stdout);

        env.Server.Stop();
        try
        {
            var sick = await WaitForExitCodeAsync(1, "health", "-e", Env);
            var line = Assert.Single(sick.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("ensemble: 1 of 1 node of environment 'zk' is unhealthy: ", line);
            Assert.Contains("coordination store session", line);
            Assert.Contains("unhealthy: ", sick.Stdout);

            var sickFile = await WaitForExitCodeAsync(1, "health", "--file", HealthFilePath, "--format", "json");
            using var document = JsonDocument.Parse(sickFile.Stdout);
            Assert.False(document.RootElement.GetProperty("healthy").GetBoolean());
            Assert.True(document.RootElement.GetProperty("fresh").GetBoolean());
            Assert.Contains(document.RootElement.GetProperty("reasons").EnumerateArray(), r => r.GetString()!.Contains("coordination store"));
        }
        finally
        {
            env.Server.Start();
        }
        await WaitForExitCodeAsync(0, "health", "-e", Env);
    }

    [Fact]
    public async Task A_health_file_that_is_missing_is_3_one_that_is_stale_is_1()
    {
        var scratch = Directory.CreateTempSubdirectory("ensemble-health-file-").FullName;
        try
        {
            var missing = await Run("health", "--file", Path.Combine(scratch, "health.json"));
            Assert.Equal(3, missing.ExitCode);
            Assert.StartsWith("ensemble: health file ", missing.Stderr);

            var stale = Path.Combine(scratch, "stale.json");
            File.WriteAllText(stale, $$"""{"timestamp": "{{HealthDocument.Time(DateTimeOffset.UtcNow.AddMinutes(-5))}}", "healthy": true, "reasons": []}""");
            var old = await Run("health", "--file", stale, "--max-age", "60");
            Assert.Equal(1, old.ExitCode);
            Assert.Contains("more than 60 s; its node is stopped or stuck", old.Stderr);
            Assert.Equal(0, (await Run("health", "--file", stale, "--max-age", "600")).ExitCode);

            var notHealth = Path.Combine(scratch, "other.json");
            File.WriteAllText(notHealth, "{}");
            Assert.Equal(3, (await Run("health", "--file", notHealth)).ExitCode);
            Assert.Equal(2, (await Run("health", "-e", Env, "--max-age", "5")).ExitCode);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [Fact]
    public async Task Health_of_an_environment_that_is_not_bootstrapped_is_7()
    {
        var result = await Run("health", "-e", "nowhere");
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("not bootstrapped", result.Stderr);
    }
}
