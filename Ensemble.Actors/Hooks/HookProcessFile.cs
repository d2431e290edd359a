using System.Diagnostics;
using System.Globalization;

namespace Ensemble.Hooks;

/// <summary>
/// Records the process of the hook a unit is running, so that an agent started after its predecessor
/// died without killing its hooks (kill -9, the OOM killer, a power cut of the agent alone) can end the
/// orphaned run before running the step again: a hook never runs twice at once for one unit.
/// The file holds the pid and the kernel's start time of that process, so a pid reused by an unrelated
/// process is never killed. It is one fixed-size record, rewritten in place by a single write (a blank
/// record: no hook runs): a unit's hooks neither create nor delete a file each, which on ext4 made every
/// new file of the machine slower to create (docs/performance.md), and a single write of 64 bytes is not
/// torn by the agent being killed.
/// </summary>
public static class HookProcessFile
{
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    /// <summary>The size of the record: "PID STARTTIME", padded with spaces, and a newline.</summary>
    private const int RecordBytes = 64;

    public static void Record(string path, int pid)
    {
        if (StartTimeOf(pid) is not { } started) return;
        Write(path, $"{pid.ToString(CultureInfo.InvariantCulture)} {started.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Records that no hook runs (a file that is not there says so already).</summary>
    public static void Clear(string path)
    {
        try
        {
            if (File.Exists(path)) Write(path, "");
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The process recorded, or null when the file is missing, blank or not a record.</summary>
    public static (int Pid, long Started)? Read(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return fields.Length == 2 && int.TryParse(fields[0], CultureInfo.InvariantCulture, out var pid)
            && long.TryParse(fields[1], CultureInfo.InvariantCulture, out var started) ? (pid, started) : null;
    }

    /// <summary>Kills the recorded hook and its process tree if that very process still runs, then forgets it.</summary>
    public static async Task KillLeftoverAsync(string path)
    {
        if (Read(path) is not { } recorded) return;
        if (StartTimeOf(recorded.Pid) == recorded.Started)
        {
            try
            {
                using var leftover = Process.GetProcessById(recorded.Pid);
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

    /// <summary>Writes <paramref name="content"/> as the whole record, at offset 0, in one write.</summary>
    private static void Write(string path, string content)
    {
        var record = new byte[RecordBytes];
        Array.Fill(record, (byte)' ');
        var written = System.Text.Encoding.ASCII.GetBytes(content, record);
        if (written >= RecordBytes) throw new ArgumentException("a hook process record is longer than its 64 bytes", nameof(content));
        record[^1] = (byte)'\n';
        using var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(handle, record, fileOffset: 0);
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
