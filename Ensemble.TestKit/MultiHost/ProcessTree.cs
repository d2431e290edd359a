using System.Globalization;
using System.Runtime.InteropServices;

namespace Ensemble.TestKit.MultiHost;

/// <summary>Processes as /proc shows them: parent, state, start time; signals; killing a whole tree.</summary>
internal static class ProcessTree
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    private const int SigStop = 19;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int signal);

    public static void Signal(int pid, int signal) => SysKill(pid, signal);

    private readonly record struct Stat(int ParentPid, char State, long StartTime);

    private static Stat? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        // The command name is in parentheses and may itself hold spaces and parentheses.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return new Stat(int.Parse(fields[1], CultureInfo.InvariantCulture), fields[0][0], long.Parse(fields[19], CultureInfo.InvariantCulture));
    }

    /// <summary>Clock ticks after boot at which the process started: with the pid, it names one process for good.</summary>
    public static long StartTime(int pid) => ReadStat(pid)?.StartTime ?? -1;

    /// <summary>True while the process that started at <paramref name="startTime"/> runs (a zombie has ended).</summary>
    public static bool IsAlive(int pid, long startTime) =>
        ReadStat(pid) is { State: not ('Z' or 'X') } stat && stat.StartTime == startTime;

    private static List<int> Descendants(int root)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            if (ReadStat(pid) is not { } stat) continue;
            if (!children.TryGetValue(stat.ParentPid, out var list)) children[stat.ParentPid] = list = [];
            list.Add(pid);
        }
        var found = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var pid))
            foreach (var child in children.GetValueOrDefault(pid) ?? [])
            {
                found.Add(child);
                queue.Enqueue(child);
            }
        return found;
    }

    /// <summary>SIGKILLs the process and every descendant, stopping them all first so none can fork away meanwhile.</summary>
    public static void KillTree(int root, long rootStartTime)
    {
        if (!IsAlive(root, rootStartTime)) return;
        var stopped = new HashSet<int>();
        for (var round = 0; round < 100; round++)
        {
            var fresh = new[] { root }.Concat(Descendants(root)).Where(stopped.Add).ToList();
            if (fresh.Count == 0) break;
            foreach (var pid in fresh) Signal(pid, SigStop);
            // A stop signal takes effect asynchronously: look for children again only once all have stopped.
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(2);
            while (fresh.Any(pid => ReadStat(pid) is { State: not ('T' or 't' or 'Z' or 'X') }) && DateTime.UtcNow < until)
                Thread.Yield();
        }
        foreach (var pid in stopped) Signal(pid, SigKill);
    }
}
