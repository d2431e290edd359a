using System.Diagnostics;
using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// `--repository` is read where the ensemble command runs: the installed command, in a mount namespace of its own
/// where the repository is a tmpfs nobody else sees, deploys and upgrades a real node that cannot open that directory
/// (it sees it empty); the author's edit loop works the same way; and a 100 MiB formula travels with memory far
/// below its size on both sides.
/// </summary>
public sealed class FormulaTravelTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    private const int MiB = 1024 * 1024;

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        return result;
    }

    /// <summary>
    /// Runs the installed command in a private mount namespace where <paramref name="repository"/> is a fresh tmpfs
    /// holding a copy of <paramref name="staged"/>; the staged copy is removed before the command starts, so the
    /// formula exists only inside that namespace while the command runs.
    /// </summary>
    private async Task<CommandResult> RunWithPrivateRepository(string repository, string staged, params string[] args)
    {
        var start = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                     "mount -t tmpfs ensemble-operator \"$0\" && cp -a \"$1\"/. \"$0\"/ && rm -rf \"$1\" && shift && exec \"$@\"",
                     repository, staged, InstalledTool.Command, .. args])
            start.ArgumentList.Add(arg);
        start.Environment["ENSEMBLE_HOME"] = env.Ensemble.Home;
        start.Environment.Remove("ENSEMBLE_ENVIRONMENT");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        var result = new CommandResult(process.ExitCode, await stdout, await stderr);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}   (repository only in the command's mount namespace)\n{result}");
        return result;
    }

    private async Task<JsonElement> UnitAsync(string service, string unit)
    {
        var status = await Run("status", "-e", "e2e", "--format", "json", service);
        Assert.Equal(0, status.ExitCode);
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("services").GetProperty(service).GetProperty("units").GetProperty(unit).Clone();
    }

    [Fact]
    public async Task Deploy_and_upgrade_read_the_repository_where_the_command_runs_and_the_node_never_sees_it()
    {
        var operatorOnly = Path.Combine(env.Root, "operator-only", "repository");
        var staged = Path.Combine(env.Root, "staging", "repository");
        Directory.CreateDirectory(operatorOnly);

        // Revision 1: deployed from a directory that, outside the command's namespace, is empty.
        TestFormulas.Write(staged, "travel", 1);
        Assert.Equal(0, (await RunWithPrivateRepository(operatorOnly, staged, "deploy", "-e", "e2e", "--repository", operatorOnly, "--wait", "travel")).ExitCode);
        Assert.Empty(Directory.EnumerateFileSystemEntries(operatorOnly));
        Assert.False(Directory.Exists(staged));
        Assert.Equal("local:travel-1", (await UnitAsync("travel", "travel/0")).GetProperty("formula").GetString());

        // Revision 2 from the same directory (remembered as the operator named it), again only the command's.
        TestFormulas.Write(staged, "travel", 2);
        var upgraded = await RunWithPrivateRepository(operatorOnly, staged, "upgrade-formula", "-e", "e2e", "--wait", "travel");
        Assert.Equal(0, upgraded.ExitCode);
        Assert.Equal("local:travel-2", (await UnitAsync("travel", "travel/0")).GetProperty("formula").GetString());

        // The author's edit loop: revision 2 edited in place is deployed as revision 3.
        TestFormulas.Write(staged, "travel", 2, marker: "edited");
        Assert.Equal(0, (await RunWithPrivateRepository(operatorOnly, staged, "upgrade-formula", "-e", "e2e", "--wait", "travel")).ExitCode);
        var unit = await UnitAsync("travel", "travel/0");
        Assert.Equal("local:travel-3", unit.GetProperty("formula").GetString());
        Assert.Equal("running", unit.GetProperty("state").GetString());
        // And unchanged content is nothing newer (exit 5), decided on the command's side.
        TestFormulas.Write(staged, "travel", 2, marker: "edited");
        var same = await RunWithPrivateRepository(operatorOnly, staged, "upgrade-formula", "-e", "e2e", "travel");
        Assert.Equal(5, same.ExitCode);
        Assert.Contains("no newer revision of formula 'travel'", same.Stderr);

        // Where the command runs without that repository, the command says so: it is the command that reads it.
        var missing = await Run("upgrade-formula", "-e", "e2e", "travel");
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains($"formula 'travel' not found in repository {operatorOnly}", missing.Stderr);
        Assert.False(missing.HasStackTrace);
    }

    [Fact]
    public async Task A_100_MiB_formula_travels_with_memory_far_below_its_size()
    {
        const long blobBytes = 100L * MiB;
        var repository = Path.Combine(env.Root, "large");
        // Random bytes do not compress: a bundle is as large as its formula.
        await WriteWithBlobAsync(repository, "warm", 10L * MiB);
        await WriteWithBlobAsync(repository, "big", blobBytes);

        // A 10 MiB formula first: the node's pools and heap budgets settle at what any transfer costs. What the
        // 100 MiB one adds on top is what grows with the size of a formula.
        var node = env.Pid;
        var nodeBefore = EnsembleCommand.ResidentBytes(node)!.Value;
        var warm = await PeakOfAsync("deploy", "-e", "e2e", "--repository", repository, "--wait", "warm");
        Assert.True(warm.Result.ExitCode == 0, warm.Result.ToString());
        var nodeWarm = EnsembleCommand.PeakResidentBytes(node)!.Value;

        // The command's own size doing little: a status.
        var idle = await PeakOfAsync("status", "-e", "e2e");
        var clock = Stopwatch.StartNew();
        var deployed = await PeakOfAsync("deploy", "-e", "e2e", "--repository", repository, "--wait", "big");
        var nodePeak = EnsembleCommand.PeakResidentBytes(node)!.Value;
        output.WriteLine($"deploy of a {blobBytes / MiB} MiB formula took {clock.Elapsed.TotalSeconds:F1} s; " +
                         $"the command's peak resident set {deployed.Peak / MiB} MiB (a status: {idle.Peak / MiB} MiB, the 10 MiB deploy: {warm.Peak / MiB} MiB); " +
                         $"the node's resident set {nodeBefore / MiB} MiB before, its peak {nodeWarm / MiB} MiB after the 10 MiB formula and {nodePeak / MiB} MiB after the 100 MiB one");
        Assert.True(deployed.Result.ExitCode == 0, deployed.Result.ToString());

        // The unit runs the whole file; it travelled through the controller's formula storage.
        var unitFormula = Path.Combine(Path.GetDirectoryName(env.UnitDataDirectory("big/0"))!, "formula", "blob.bin");
        Assert.Equal(blobBytes, new FileInfo(unitFormula).Length);

        // Neither side held the bundle: the command grew by far less than the formula over a status, and the node's
        // peak rose by far less than the formula over a transfer of a tenth of its size.
        Assert.True(deployed.Peak - idle.Peak < blobBytes / 2,
            $"the command's peak grew by {(deployed.Peak - idle.Peak) / MiB} MiB over a status's while deploying a {blobBytes / MiB} MiB formula");
        Assert.True(nodePeak - nodeWarm < blobBytes / 4,
            $"the node's peak resident set rose {(nodePeak - nodeWarm) / MiB} MiB receiving a {blobBytes / MiB} MiB formula after a 10 MiB one");

        Assert.Equal(0, (await Run("destroy-service", "-e", "e2e", "big")).ExitCode);
        Assert.Equal(0, (await Run("destroy-service", "-e", "e2e", "warm")).ExitCode);
        Directory.Delete(repository, recursive: true);
    }

    private static async Task WriteWithBlobAsync(string repository, string name, long bytes)
    {
        var dir = TestFormulas.Write(repository, name, 1);
        await using var blob = File.Create(Path.Combine(dir, "blob.bin"));
        var buffer = new byte[MiB];
        for (var i = 0; i < bytes / MiB; i++)
        {
            Random.Shared.NextBytes(buffer);
            await blob.WriteAsync(buffer);
        }
    }

    /// <summary>Runs the command and reads its peak resident set (VmHWM) until it ends.</summary>
    private async Task<(CommandResult Result, long Peak)> PeakOfAsync(params string[] args)
    {
        using var running = env.Ensemble.Start(args);
        long peak = 0;
        var clock = Stopwatch.StartNew();
        while (!running.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5))
        {
            if (EnsembleCommand.PeakResidentBytes(running.Pid) is { } now) peak = Math.Max(peak, now);
            await Task.Delay(20);
        }
        var result = await running.WaitAsync(TimeSpan.FromMinutes(5));
        output.WriteLine($"$ ensemble {string.Join(' ', args)}   (peak resident {peak / MiB} MiB)\n{result}");
        return (result, peak);
    }
}
