using System.Diagnostics;
using System.Text.Json;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// A local environment whose node dies with kill -9 in the middle of an upgrade (a power cut, the OOM killer)
/// comes back with restart-environment: every unit and its data is still there, and the interrupted upgrade
/// finishes, its hook run to completion exactly once after the crash. Bootstrap refuses to replace it.
/// </summary>
public sealed class RestartEnvironmentTests(ITestOutputHelper output) : IDisposable
{
    private const string Name = "crash";
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-restart-").FullName;
    private string Repository => Path.Combine(_root, "repository");
    private string Control => TestFormulas.ControlDirectory(Repository);
    private EnsembleCommand Ensemble => new(Path.Combine(_root, "home"));

    private string UnitDataDirectory(string unit) =>
        Path.Combine(Ensemble.EnvironmentDirectory(Name), "data", "machines", "machine-0", "units", unit.Replace('/', '-'), "data");

    public void Dispose()
    {
        // Let any hook still waiting on the hold file end, then stop whatever node is left.
        File.Delete(Path.Combine(Control, "hold-upgrade-formula"));
        if (File.Exists(Ensemble.RecordPath(Name)))
        {
            var pid = Ensemble.NodePid(Name);
            Ensemble.RunAsync("destroy-environment", Name).GetAwaiter().GetResult();
            if (EnsembleCommand.IsRunning(pid)) Process.GetProcessById(pid).Kill(entireProcessTree: true);
        }
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.False(result.HasStackTrace, result.ToString());
        return result;
    }

    private async Task<JsonElement> UnitsAsync()
    {
        var status = await Run("status", "--format", "json", "-e", Name);
        Assert.True(status.ExitCode == 0, status.ToString());
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("services").GetProperty("vault").GetProperty("units");
    }

    [Fact]
    public async Task After_kill_9_mid_upgrade_restart_environment_brings_back_every_unit_with_its_data_and_the_upgrade_finishes_once()
    {
        Directory.CreateDirectory(Repository);
        TestFormulas.Write(Repository, "vault", 1);
        Assert.Equal(0, (await Run("bootstrap", "--local", "--name", Name)).ExitCode);
        Assert.Equal(0, (await Run("deploy", "-e", Name, "--repository", Repository, "-n", "3", "--wait", "vault")).ExitCode);
        var units = new[] { "vault/0", "vault/1", "vault/2" };
        var secrets = Path.Combine(UnitDataDirectory("vault/1"), "secrets.db");
        File.WriteAllText(secrets, "the only copy");

        File.WriteAllText(Path.Combine(Control, "hold-upgrade-formula"), "");
        TestFormulas.Write(Repository, "vault", 2);
        Assert.Equal(0, (await Run("upgrade-formula", "-e", Name, "vault")).ExitCode);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(units.All(u =>
            TestFormulas.HookTrace(UnitDataDirectory(u)).Contains("upgrade-formula 2 begin"))), TimeSpan.FromSeconds(90), "every unit in its upgrade hook");

        // kill -9 of the node: no shutdown at all; the hooks it started are orphaned and keep waiting.
        var pid = Ensemble.NodePid(Name);
        using (var node = Process.GetProcessById(pid))
        {
            node.Kill();
            await node.WaitForExitAsync();
        }
        var beforeRestart = units.ToDictionary(u => u, u => TestFormulas.HookTrace(UnitDataDirectory(u)).Count);

        var status = await Run("status", "-e", Name);
        Assert.Equal(7, status.ExitCode);
        Assert.Contains($"ensemble restart-environment {Name}", status.Stderr);
        Assert.Single(status.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var bootstrap = await Run("bootstrap", "--local", "--name", Name);
        Assert.Equal(6, bootstrap.ExitCode);
        Assert.Contains($"ensemble restart-environment {Name}", bootstrap.Stderr);
        Assert.Contains($"ensemble destroy-environment {Name}", bootstrap.Stderr);
        Assert.Equal("the only copy", File.ReadAllText(secrets));
        Assert.All(units, u => Assert.True(Directory.Exists(UnitDataDirectory(u)), $"{u}'s data directory is gone"));

        var restart = await Run("restart-environment", Name);
        Assert.True(restart.ExitCode == 0, restart.ToString());
        Assert.NotEqual(pid, Ensemble.NodePid(Name));

        // The restarted units run their upgrade hook again (ending the orphaned run first); only then let it finish.
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(units.All(u =>
            TestFormulas.HookTrace(UnitDataDirectory(u)).Skip(beforeRestart[u]).Contains("upgrade-formula 2 begin"))),
            TimeSpan.FromSeconds(90), "every restarted unit to run its upgrade hook again");
        File.Delete(Path.Combine(Control, "hold-upgrade-formula"));

        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            var current = await UnitsAsync();
            return units.All(u => current.GetProperty(u) is var unit
                && unit.GetProperty("formula").GetString() == "local:vault-2" && unit.GetProperty("state").GetString() == "running"
                && !unit.GetProperty("upgrading").GetBoolean());
        }, TimeSpan.FromSeconds(90), "every unit on revision 2");
        var json = JsonDocument.Parse((await Run("status", "--format", "json", "-e", Name)).Stdout).RootElement;
        Assert.False(json.GetProperty("services").GetProperty("vault").GetProperty("upgrade-running").GetBoolean());

        Assert.Equal("the only copy", File.ReadAllText(secrets));
        foreach (var unit in units)
        {
            var trace = TestFormulas.HookTrace(UnitDataDirectory(unit));
            var afterCrash = trace.Skip(beforeRestart[unit]).ToList();
            output.WriteLine($"{unit}: {string.Join(" | ", trace)}");
            Assert.Equal(1, afterCrash.Count(l => l == "upgrade-formula 2 begin"));
            Assert.Equal(1, afterCrash.Count(l => l == "upgrade-formula 2 end"));
            // The orphaned run never finished: its one "end" would be a second one.
            Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 end"));
            Assert.Equal("start 2 end", trace[^1]);
        }
    }
}
