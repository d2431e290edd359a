using System.Diagnostics;
using System.Globalization;

namespace Ensemble.TestKit;

/// <summary>
/// Makes sure a server a test started (a ZooKeeper JVM, say) does not outlive the test process, however that
/// process ends — disposed fixtures, a crash, or SIGKILL by the test runner. This process holds an exclusive
/// flock on a file of its own for its whole life; for each guarded child a small `flock` process waits for
/// that lock, which the kernel releases when this process is gone, and then kills the child — only if the
/// pid still names that very process (its start time is checked), never a stranger that got the pid later.
/// </summary>
public static class ProcessWatchdog
{
    private static readonly Lazy<string> OwnerLock = new(TakeOwnerLock, LazyThreadSafetyMode.ExecutionAndPublication);
    private static FileStream? _held;

    /// <summary>Kills <paramref name="child"/> (SIGKILL) once this process has ended, if it still runs then.</summary>
    public static void Guard(Process child) => Guard(child, OwnerLock.Value);

    /// <summary>Kills <paramref name="child"/> once nobody holds the flock on <paramref name="ownerLock"/> any more.</summary>
    internal static void Guard(Process child, string ownerLock)
    {
        var started = StartTimeOf(child.Id);
        if (started is null) return;
        // Runs once the owner is gone: the first watchdog removes the lock file (the others hold it open already).
        var script = """
            rm -f "$3"
            stat=$(cat /proc/$1/stat 2>/dev/null) || exit 0
            set -- "$1" "$2" "$3" $(printf '%s' "${stat##*) }")
            [ "${23}" = "$2" ] && kill -9 "$1"
            exit 0
            """;
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var arg in new[] { "flock", ownerLock, "sh", "-c", script, "watchdog",
                     child.Id.ToString(CultureInfo.InvariantCulture), started.Value.ToString(CultureInfo.InvariantCulture), ownerLock })
            start.ArgumentList.Add(arg);
        using var watchdog = Process.Start(start)
            ?? throw new InvalidOperationException("could not start the watchdog (setsid and flock, from util-linux, are needed)");
        watchdog.StandardInput.Close();
    }

    private static string TakeOwnerLock()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ensemble-owner-{Environment.ProcessId}-{Guid.NewGuid():N}.lock");
        // FileShare.None takes an exclusive flock, held as long as this process lives (the stream is never closed).
        _held = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        return path;
    }

    /// <summary>Field 22 of /proc/&lt;pid&gt;/stat, counted after the command name's closing parenthesis.</summary>
    private static long? StartTimeOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.TryParse(rest[19], CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
