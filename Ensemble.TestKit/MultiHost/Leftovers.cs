using System.Diagnostics;
using System.Globalization;

namespace Ensemble.TestKit.MultiHost;

/// <summary>
/// Names that tell whose a network is, and the one cleanup every path shares: the owner's dispose, the watchdog
/// that outlives a killed owner, and the sweep of dead runs when a new network is created.
/// </summary>
/// <remarks>
/// A network's id is "emh.PID.START.B-C": the owning test process (pid and start time, so a reused pid is not
/// mistaken for it) and the subnet 10.B.C.0/24. Its namespaces are "ID.switch" and "ID.HOST", its directory
/// TMP/ID. A run is dead when that process is.
/// </remarks>
internal static class Leftovers
{
    public const string Prefix = "emh.";
    private const string NetnsDirectory = "/run/netns";

    public static string NewId(int b, int c) =>
        string.Create(CultureInfo.InvariantCulture, $"{Prefix}{Environment.ProcessId}.{ProcessTree.StartTime(Environment.ProcessId)}.{b}-{c}");

    public static string DirectoryOf(string id) => Path.Combine(Path.GetTempPath(), id);

    /// <summary>The ids of every network whose namespaces or directory exist, this process's own included.</summary>
    public static IEnumerable<string> ExistingIds()
    {
        var names = Names(NetnsDirectory, files: true).Concat(Names(Path.GetTempPath(), files: false));
        return names.Select(IdOf).OfType<string>().Distinct();
    }

    public static IEnumerable<string> NamespacesOf(string id) =>
        Names(NetnsDirectory, files: true).Where(name => name.StartsWith(id + ".", StringComparison.Ordinal));

    private static IEnumerable<string> Names(string directory, bool files)
    {
        try
        {
            var entries = files ? Directory.EnumerateFiles(directory, Prefix + "*") : Directory.EnumerateDirectories(directory, Prefix + "*");
            return entries.Select(Path.GetFileName).OfType<string>().ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    private static string? IdOf(string name)
    {
        var parts = name.Split('.');
        return parts.Length >= 4 && parts[0] + "." == Prefix ? string.Join('.', parts[..4]) : null;
    }

    /// <summary>The subnet 10.B.C.0/24 an id claims, as (B, C).</summary>
    public static (int B, int C)? SubnetOf(string id)
    {
        var octets = id.Split('.')[3].Split('-');
        return octets.Length == 2 && int.TryParse(octets[0], CultureInfo.InvariantCulture, out var b) && int.TryParse(octets[1], CultureInfo.InvariantCulture, out var c)
            ? (b, c) : null;
    }

    public static bool OwnerAlive(string id)
    {
        var parts = id.Split('.');
        return int.TryParse(parts[1], CultureInfo.InvariantCulture, out var pid)
               && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var start)
               && ProcessTree.IsAlive(pid, start);
    }

    // Processes go before their namespace's name: a deleted name leaves a namespace alive while anything is in it,
    // and then nothing could find it any more.
    private const string CleanupScript = """
        id=$1 dir=$2 ip=$3
        round=0
        while :; do
          busy=
          for path in /run/netns/"$id".*; do
            [ -e "$path" ] || continue
            ns=${path##*/}
            pids=$("$ip" netns pids "$ns" 2>/dev/null)
            if [ -n "$pids" ]; then
              kill -STOP $pids 2>/dev/null; kill -KILL $pids 2>/dev/null; busy=1
            elif ! "$ip" netns del "$ns"; then
              busy=1
            fi
          done
          [ -z "$busy" ] && break
          round=$((round + 1))
          if [ $round -ge 300 ]; then echo "the namespaces of $id still hold processes after 300 rounds of SIGKILL" >&2; exit 1; fi
          sleep 0.03
        done
        case ${dir##*/} in emh.*) rm -rf -- "$dir" ;; esac
        """;

    /// <summary>Kills every process in the network's namespaces, deletes the namespaces (and so their links) and its directory.</summary>
    public static async Task CleanUpAsync(string id)
    {
        var result = await Tools.RunAsync(Tools.Sh, ["-c", CleanupScript, "sh", id, DirectoryOf(id), Tools.Ip], TimeSpan.FromSeconds(60));
        var left = NamespacesOf(id).ToList();
        if (result.ExitCode != 0 || left.Count > 0 || Directory.Exists(DirectoryOf(id)))
            throw new InvalidOperationException(
                $"Could not remove simulated network {id}: namespaces left [{string.Join(", ", left)}], directory {(Directory.Exists(DirectoryOf(id)) ? "left" : "removed")}; {result.Stderr.Trim()}");
    }

    /// <summary>Removes what runs whose test process died (SIGKILL, a crash, a power cut) left behind.</summary>
    public static async Task SweepDeadRunsAsync()
    {
        foreach (var id in ExistingIds().Where(id => !OwnerAlive(id)))
        {
            try { await CleanUpAsync(id); }
            catch (InvalidOperationException) when (!NamespacesOf(id).Any()) { /* its watchdog finished first */ }
        }
    }

    /// <summary>
    /// Starts a process outside the test's session that waits for the owner's lock, which the kernel releases when the
    /// owner ends in any way, and then cleans up. After a normal dispose it finds nothing left and exits.
    /// </summary>
    public static Process StartWatchdog(string id, string lockPath)
    {
        var psi = new ProcessStartInfo(Tools.Command("setsid")) { UseShellExecute = false };
        // Its own session and no inherited output: neither a signal to the test's process group nor a closed pipe of
        // the test runner may stop it halfway.
        foreach (var argument in new[]
                 {
                     Tools.Sh, "-c", "exec </dev/null >/dev/null 2>&1; exec \"$0\" \"$1\" \"$2\" -c \"$3\" sh \"$4\" \"$5\" \"$6\"",
                     Tools.Command("flock"), lockPath, Tools.Sh, CleanupScript, id, DirectoryOf(id), Tools.Ip,
                 })
            psi.ArgumentList.Add(argument);
        return Process.Start(psi) ?? throw new InvalidOperationException("Could not start the simulated network's watchdog.");
    }
}
