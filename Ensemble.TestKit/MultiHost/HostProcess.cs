using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Ensemble.TestKit.MultiHost;

/// <summary>A process running on a simulated host; its stdout and stderr go to <see cref="LogPath"/> on that host.</summary>
public sealed class HostProcess : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);
    private readonly Process _process;
    private readonly long _startTime;

    internal HostProcess(SimulatedHost host, string name, Process process, string logPath)
    {
        Host = host;
        Name = name;
        _process = process;
        Pid = process.Id;
        _startTime = ProcessTree.StartTime(Pid);
        LogPath = logPath;
    }

    public SimulatedHost Host { get; }

    /// <summary>What the test called it (the log file is named after it).</summary>
    public string Name { get; }

    /// <summary>The process's own pid (the fixture's wrappers exec into it), as the machine and every host see it.</summary>
    public int Pid { get; }

    /// <summary>Everything it printed, stdout and stderr interleaved, in the host's <see cref="SimulatedHost.LogDirectory"/>.</summary>
    public string LogPath { get; }

    public bool HasExited => _released is not null || _process.HasExited;

    /// <summary>The exit code once it has exited (128 + the signal when a signal ended it), else null.</summary>
    public int? ExitCode => _released ?? (_process.HasExited ? _process.ExitCode : null);

    private int? _released;

    /// <summary>What it has printed so far.</summary>
    public string ReadLog()
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>SIGKILL, as `kill -9` does; with <paramref name="entireTree"/> also to everything it started (hooks, children).</summary>
    public void Kill(bool entireTree = true)
    {
        if (entireTree) ProcessTree.KillTree(Pid, _startTime);
        else if (ProcessTree.IsAlive(Pid, _startTime)) ProcessTree.Signal(Pid, ProcessTree.SigKill);
    }

    /// <summary>SIGTERM to the process alone: it decides how to stop what it started.</summary>
    public void Terminate()
    {
        if (ProcessTree.IsAlive(Pid, _startTime)) ProcessTree.Signal(Pid, ProcessTree.SigTerm);
    }

    /// <summary>Waits until it has exited and returns its exit code; throws <see cref="TimeoutException"/> at the deadline.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        if (_released is { } code) return code;
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{this} did not exit within {timeout}. Last lines of {LogPath}:\n{Tail()}");
        }
        return _process.ExitCode;
    }

    /// <summary>Waits until a line of its output contains <paramref name="text"/>; returns that line.</summary>
    public Task<string> WaitForOutputAsync(string text, TimeSpan timeout) => WaitForOutputAsync(new Regex(Regex.Escape(text)), timeout);

    /// <summary>
    /// Waits until a line of its output (from its start) matches <paramref name="pattern"/>; returns that line. Throws
    /// <see cref="TimeoutException"/> at the deadline and <see cref="InvalidOperationException"/> when it exits first.
    /// </summary>
    public async Task<string> WaitForOutputAsync(Regex pattern, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        await using var stream = new FileStream(LogPath, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var pending = new StringBuilder();
        while (true)
        {
            // Read whether it exited before reading the log, so that a line printed just before exiting is still seen.
            var exited = HasExited;
            pending.Append(await reader.ReadToEndAsync());
            var text = pending.ToString();
            var lines = text.Split('\n');
            if (lines.FirstOrDefault(pattern.IsMatch) is { } line) return line.TrimEnd('\r');
            // The last piece may be a line still being written: keep it for the next read.
            pending.Clear().Append(lines[^1]);
            if (exited)
                throw new InvalidOperationException(
                    $"{this} exited with {ExitCode} before printing a line matching /{pattern}/. Last lines of {LogPath}:\n{Tail()}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{this} printed no line matching /{pattern}/ within {timeout}. Last lines of {LogPath}:\n{Tail()}");
            await Task.Delay(PollInterval);
        }
    }

    /// <summary>The last lines of its output, for failure messages.</summary>
    public string Tail(int lines = 30)
    {
        try
        {
            return string.Join('\n', ReadLog().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no output)";
        }
    }

    /// <summary>Kills it and everything it started, and waits until it is gone.</summary>
    public async ValueTask DisposeAsync()
    {
        Kill(entireTree: true);
        await WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>After the network killed everything: reap it (so its pid is free) and let go of the handle.</summary>
    internal async Task ReleaseAsync(TimeSpan timeout)
    {
        if (_released is not null) return;
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _released = _process.ExitCode;
        _process.Dispose();
    }

    public override string ToString() => $"'{Name}' (pid {Pid}) on {Host.Name}";
}
