using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Ensemble.Services;

namespace Ensemble.Cli;

/// <summary>
/// An environment's node as an operating-system process: started from beside this program in a session of
/// its own (it outlives the command and the terminal), looked up by pid, and stopped by signal.
/// </summary>
public static class NodeProcess
{
    private const int SigKill = 9;
    private const int SigTerm = 15;

    /// <summary>How long a node may take to stop after SIGTERM: units finish the hook they are in first.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromMinutes(6);

    private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Starts the node of environment <paramref name="name"/> on its data directory and returns once its
    /// controller answers. Used by bootstrap and restart-environment alike, so a restarted node gets exactly
    /// the flags the first one had.
    /// </summary>
    public static async Task<EnvironmentRecord> LaunchAsync(EnvironmentHome home, string name, string? zookeeper)
    {
        var directory = home.EnvironmentDirectory(name);
        Directory.CreateDirectory(directory);
        var dataDirectory = Path.Combine(directory, "data");
        var log = Path.Combine(directory, "agent.log");
        var ready = Path.Combine(directory, "ready.json");
        // A ready file from an earlier run would name a contact point that no longer exists.
        File.Delete(ready);
        var pid = Start(name, dataDirectory, log, ready, zookeeper);

        var deadline = DateTime.UtcNow + StartDeadline;
        while (!File.Exists(ready))
        {
            if (!IsAlive(pid))
                throw new CliException(ExitCodes.Unavailable, $"the node of environment '{name}' exited while starting; see {log}.");
            if (DateTime.UtcNow > deadline)
            {
                Signal(pid, SigKill);
                throw new CliException(ExitCodes.Unavailable, $"the node of environment '{name}' did not start within a minute; see {log}.");
            }
            await Task.Delay(50);
        }
        string contact, controller;
        using (var readyJson = JsonDocument.Parse(await File.ReadAllTextAsync(ready)))
        {
            contact = readyJson.RootElement.GetProperty("contact").GetString()!;
            controller = readyJson.RootElement.GetProperty("controller").GetString()!;
        }
        var record = new EnvironmentRecord(name, contact, pid, dataDirectory, log, zookeeper, [controller]);
        home.Save(record);

        await using var client = new ControllerClient(record);
        if (await client.AskAsync(new EnvironmentRequests.Ping(), TimeSpan.FromSeconds(30)) is not EnvironmentReplies.Pong)
            throw new CliException(ExitCodes.Unavailable, $"environment '{name}' started but its controller does not answer; see {log}.");
        return record;
    }

    /// <summary>Starts Ensemble.Agent from beside this program, output appended to its log; returns its pid.</summary>
    private static int Start(string name, string dataDirectory, string log, string ready, string? zookeeper)
    {
        var agent = AgentProgram();
        string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        // setsid: the node outlives this command and the terminal it was typed in.
        var command = $"exec setsid {Quote(DotnetHost())} {Quote(agent)} --data-dir {Quote(dataDirectory)} --environment {Quote(name)} " +
                      $"--roles controller,agent --machine machine-0 --port 0 --ready-file {Quote(ready)} " +
                      (zookeeper is null ? "" : $"--zookeeper {Quote(zookeeper)} ") + $">> {Quote(log)} 2>&1 < /dev/null";
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = Process.Start(start) ?? throw new CliException(ExitCodes.Unavailable, "could not start the environment's node.");
        return process.Id;
    }

    /// <summary>The node program, Ensemble.Agent.dll, which the tool carries beside the ensemble command.</summary>
    public static string AgentProgram()
    {
        var agent = Path.Combine(AppContext.BaseDirectory, "Ensemble.Agent.dll");
        return File.Exists(agent) ? agent
            : throw new CliException(ExitCodes.Unavailable, $"Ensemble.Agent.dll is missing beside the ensemble command ({AppContext.BaseDirectory}); install the tool again.");
    }

    /// <summary>
    /// The dotnet host running this program. An installed tool runs from a launcher that is not `dotnet`,
    /// and `dotnet` need not be on PATH, so it is found from the runtime's own directory.
    /// </summary>
    public static string DotnetHost()
    {
        if (System.Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet") return host;
        // <root>/shared/Microsoft.NETCore.App/<version>/
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var dotnet = Path.Combine(root, "dotnet");
        return File.Exists(dotnet) ? dotnet : "dotnet";
    }

    public static bool IsAlive(int pid)
    {
        if (pid <= 0) return false;
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return false; }
        // A zombie has exited; its parent simply has not reaped it yet.
        return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() != 'Z';
    }

    /// <summary>
    /// SIGTERM (the node's coordinated shutdown: every unit finishes the step it is in), then waits; SIGKILL
    /// if it is still there after <paramref name="grace"/>. Returns whether it stopped by itself.
    /// </summary>
    public static async Task<bool> StopAsync(int pid, TimeSpan grace)
    {
        if (!IsAlive(pid)) return true;
        Signal(pid, SigTerm);
        var deadline = DateTime.UtcNow + grace;
        while (IsAlive(pid) && DateTime.UtcNow < deadline) await Task.Delay(50);
        if (!IsAlive(pid)) return true;
        Signal(pid, SigKill);
        while (IsAlive(pid)) await Task.Delay(50);
        return false;
    }

    private static void Signal(int pid, int signal) => _ = kill(pid, signal);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
