using System.Diagnostics;
using System.Text.Json;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// A real node whose limits an operator lowered in controller.conf (ENSEMBLE_CONFIG), so that every limit
/// can be reached with a handful of units.
/// </summary>
public sealed class LimitedEnvironmentProcess : IAsyncLifetime
{
    public string Root { get; } = Directory.CreateTempSubdirectory("ensemble-limits-").FullName;
    public string Repository => Path.Combine(Root, "repository");
    public EnsembleCommand Ensemble { get; private set; } = null!;
    public int Pid { get; private set; }

    public async Task InitializeAsync()
    {
        var config = Path.Combine(Root, "hocon");
        Directory.CreateDirectory(config);
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "hocon")))
            File.Copy(file, Path.Combine(config, Path.GetFileName(file)));
        File.AppendAllText(Path.Combine(config, "controller.conf"), """

            ensemble.limits { units-per-request = 3, units-per-service = 4, services-per-environment = 2, max-revision = 50 }
            """);
        Ensemble = new EnsembleCommand(Path.Combine(Root, "home"), new Dictionary<string, string> { ["ENSEMBLE_CONFIG"] = config });
        Directory.CreateDirectory(Repository);
        var result = await Ensemble.RunAsync("bootstrap", "--local", "--name", "limited");
        Assert.True(result.ExitCode == 0, result.ToString());
        Pid = Ensemble.NodePid("limited");
    }

    public async Task DisposeAsync()
    {
        await Ensemble.RunAsync("destroy-environment", "limited");
        if (EnsembleCommand.IsRunning(Pid)) Process.GetProcessById(Pid).Kill(entireProcessTree: true);
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Each limit of docs/cli.md, reached on a real node: refused with exit 2 and a sentence naming it, nothing changed.</summary>
public sealed class LimitsTests(LimitedEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LimitedEnvironmentProcess>
{
    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        return result;
    }

    private async Task<string> StatusJson()
    {
        var status = await Run("status", "--format", "json", "-e", "limited");
        Assert.Equal(0, status.ExitCode);
        return status.Stdout;
    }

    private async Task Refused(string limit, params string[] args)
    {
        var before = await StatusJson();
        var result = await Run(args);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ensemble: ", line);
        Assert.Contains(limit, line);
        Assert.Equal(before, await StatusJson());
    }

    [Fact]
    public async Task Every_limit_is_refused_before_anything_changes()
    {
        TestFormulas.Write(env.Repository, "web", 1);
        await Refused("over the limit of 3 units per request", "deploy", "-e", "limited", "--repository", env.Repository, "-n", "4", "web");
        Assert.Equal(0, (await Run("deploy", "-e", "limited", "--repository", env.Repository, "-n", "3", "--wait", "web")).ExitCode);

        await Refused("over the limit of 3 units per request", "add-unit", "-e", "limited", "-n", "4", "web");
        await Refused("over the limit of 4 units per service (3 exist); ask for at most 1", "add-unit", "-e", "limited", "-n", "2", "web");
        await Refused("--max-parallel must be between 1 and 4", "upgrade-formula", "-e", "limited", "--max-parallel", "5", "web");
        await Refused("--revision must be between 0 and 50", "upgrade-formula", "-e", "limited", "--revision", "51", "web");
        await Refused("more than once", "upgrade-formula", "-e", "limited", "--units", "web/0,web/0", "web");

        TestFormulas.Write(env.Repository, "db", 1);
        Assert.Equal(0, (await Run("deploy", "-e", "limited", "--repository", env.Repository, "db")).ExitCode);
        TestFormulas.Write(env.Repository, "cache", 1);
        await Refused("the environment has 2 services, the limit is 2", "deploy", "-e", "limited", "--repository", env.Repository, "cache");
    }
}

/// <summary>The largest legal request on a real node with the default limits: it works, and status answers all along.</summary>
public sealed class LargeDeployTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    [Fact]
    public async Task A_thousand_units_deploy_while_status_keeps_answering()
    {
        // Real hooks, kept small: the point is the number of units.
        var formula = Path.Combine(env.Repository, "fleet");
        Directory.CreateDirectory(Path.Combine(formula, "hooks"));
        File.WriteAllText(Path.Combine(formula, "metadata.yaml"), "name: fleet\nrevision: 1\nsummary: many units\ndescription: many units\n");
        foreach (var hook in new[] { "install", "start" })
        {
            File.WriteAllText(Path.Combine(formula, "hooks", hook), $"#!/bin/sh\necho {hook} > \"$ENSEMBLE_UNIT_DATA_DIR/{hook}\"\n");
            File.SetUnixFileMode(Path.Combine(formula, "hooks", hook), (UnixFileMode)0b111_101_101);
        }

        var deployed = await env.Ensemble.RunAsync("deploy", "-e", "e2e", "--repository", env.Repository, "-n", "1000", "fleet");
        Assert.True(deployed.ExitCode == 0, deployed.ToString());
        Assert.Contains("fleet/999", deployed.Stdout);

        var answers = 0;
        var slowest = TimeSpan.Zero;
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            var clock = Stopwatch.StartNew();
            var status = await env.Ensemble.RunAsync("status", "--format", "json", "-e", "e2e");
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            // Answering is the point: a status that times out while the units install fails the test.
            Assert.True(status.ExitCode == 0, status.ToString());
            answers++;
            var units = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("services").GetProperty("fleet").GetProperty("units");
            return units.EnumerateObject().Count() == 1000 && units.EnumerateObject().All(u => u.Value.GetProperty("state").GetString() == "running");
        }, TimeSpan.FromMinutes(4), "1000 units to run");
        output.WriteLine($"status answered {answers} times while 1000 units deployed; slowest {slowest.TotalSeconds:0.0} s");
        Assert.True(File.Exists(Path.Combine(env.UnitDataDirectory("fleet/999"), "start")));
    }
}
