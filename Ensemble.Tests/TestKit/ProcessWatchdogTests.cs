using System.Diagnostics;
using Xunit;

namespace Ensemble.Tests.TestKit;

/// <summary>A guarded server dies with the process that started it, whatever way that process ends.</summary>
public sealed class ProcessWatchdogTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ensemble-watchdog-").FullName;
    private readonly List<Process> _started = [];

    public void Dispose()
    {
        foreach (var process in _started)
        {
            try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.Dispose();
        }
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }

    private Process Start(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        _started.Add(process);
        return process;
    }

    [Fact]
    public async Task A_guarded_child_is_killed_when_its_owner_dies_by_sigkill_and_not_before()
    {
        var ownerLock = Path.Combine(_directory, "owner.lock");
        File.WriteAllText(ownerLock, "");
        // The owner stands in for a test process: it holds the lock until it is killed.
        var owner = Start("flock", "-o", ownerLock, "sleep", "300");
        Assert.True(await EventuallyAsync(() => !Lockable(ownerLock)), "the owner never took its lock");
        var child = Start("sleep", "300");

        Ensemble.TestKit.ProcessWatchdog.Guard(child, ownerLock);
        Assert.False(await EventuallyAsync(() => child.HasExited, TimeSpan.FromSeconds(1)), "the child was killed while its owner lived");

        owner.Kill(entireProcessTree: true);
        Assert.True(await EventuallyAsync(() => child.HasExited), "the child outlived its owner");
    }

    private static bool Lockable(string path)
    {
        using var probe = Process.Start(new ProcessStartInfo("flock", ["-n", path, "true"]) { UseShellExecute = false })!;
        probe.WaitForExit();
        return probe.ExitCode == 0;
    }

    private static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan? deadline = null)
    {
        var until = DateTime.UtcNow + (deadline ?? TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (DateTime.UtcNow > until) return condition();
            await Task.Delay(20);
        }
        return true;
    }
}
