using System.Diagnostics;
using System.Globalization;

namespace Ensemble.Hooks;

/// <summary>
/// Records the process of the hook a unit is running, so that an agent started after its predecessor
/// died without killing its hooks (kill -9, the OOM killer, a power cut of the agent alone) can end the
/// orphaned run before running the step again: a hook never runs twice at once for one unit.
/// The file holds the pid and the kernel's start time of that process, so a pid reused by an unrelated
/// process is never killed.
/// </summary>
public static class HookProcessFile
{
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    public static void Record(string path, int pid)
    {
        if (StartTimeOf(pid) is not { } started) return;
        var temp = path + ".tmp";
        File.WriteAllText(temp, $"{pid.ToString(CultureInfo.InvariantCulture)} {started.ToString(CultureInfo.InvariantCulture)}\n");
        File.Move(temp, path, overwrite: true);
    }

    public static void Clear(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Kills the recorded hook and its process tree if that very process still runs, then forgets it.</summary>
    public static async Task KillLeftoverAsync(string path)
    {
        if (!File.Exists(path)) return;
        var fields = (await File.ReadAllTextAsync(path)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (fields.Length == 2 && int.TryParse(fields[0], CultureInfo.InvariantCulture, out var pid)
            && long.TryParse(fields[1], CultureInfo.InvariantCulture, out var started) && StartTimeOf(pid) == started)
        {
            try
            {
                using var leftover = Process.GetProcessById(pid);
                leftover.Kill(entireProcessTree: true);
                using var wait = new CancellationTokenSource(KillWait);
                await leftover.WaitForExitAsync(wait.Token);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or OperationCanceledException)
            {
                // Gone already, or not reaped by its parent yet (a zombie holds nothing).
            }
        }
        Clear(path);
    }

    /// <summary>Field 22 of /proc/&lt;pid&gt;/stat: when the process started, in clock ticks since boot.</summary>
    private static long? StartTimeOf(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return rest.Length > 19 && long.TryParse(rest[19], CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }
}
