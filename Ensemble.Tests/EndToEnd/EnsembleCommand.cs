using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Ensemble.Tests.EndToEnd;

/// <summary>What one run of the ensemble command printed and returned.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";

    /// <summary>True when stderr holds what a user must never see: an unhandled exception's stack trace.</summary>
    public bool HasStackTrace => Stderr.Contains("   at ", StringComparison.Ordinal) || Stderr.Contains("Unhandled exception", StringComparison.Ordinal);
}

/// <summary>Runs the installed `ensemble` tool (<see cref="InstalledTool"/>) as a process, with its own ENSEMBLE_HOME and any extra environment variables.</summary>
public sealed class EnsembleCommand(string home, IReadOnlyDictionary<string, string>? environment = null)
{
    public string Home { get; } = home;

    public async Task<CommandResult> RunAsync(params string[] args) => await RunAsync(TimeSpan.FromMinutes(2), args);

    public async Task<CommandResult> RunAsync(TimeSpan deadline, params string[] args)
    {
        using var running = Start(args);
        return await running.WaitAsync(deadline);
    }

    /// <summary>Starts the command and returns while it runs (e.g. a --wait to be checked later).</summary>
    public Running Start(params string[] args)
    {
        var start = new ProcessStartInfo(InstalledTool.Command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["ENSEMBLE_HOME"] = Home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        start.Environment.Remove("ENSEMBLE_ENVIRONMENT");
        var process = Process.Start(start)!;
        process.StandardInput.Close();
        return new Running(process, args);
    }

    /// <summary>An ensemble command still running.</summary>
    public sealed class Running : IDisposable
    {
        private readonly Process process;
        private readonly string[] args;
        private readonly StringBuilder _printed = new();
        private readonly Task<string> _stdout;
        private readonly Task<string> _stderr;

        public Running(Process process, string[] args)
        {
            this.process = process;
            this.args = args;
            _stdout = PumpAsync();
            _stderr = process.StandardError.ReadToEndAsync();
        }

        public bool HasExited => process.HasExited;

        /// <summary>What the command has printed on stdout so far, while it still runs.</summary>
        public string PrintedSoFar
        {
            get { lock (_printed) return _printed.ToString(); }
        }

        /// <summary>Ctrl-C, as an operator ends a command that runs until interrupted.</summary>
        public void Interrupt()
        {
            using var kill = Process.Start("kill", ["-INT", process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }

        private async Task<string> PumpAsync()
        {
            var buffer = new char[4096];
            int read;
            while ((read = await process.StandardOutput.ReadAsync(buffer)) > 0)
                lock (_printed) _printed.Append(buffer, 0, read);
            lock (_printed) return _printed.ToString();
        }

        /// <summary>The command's process id (e.g. to read its memory from /proc while it runs).</summary>
        public int Pid => process.Id;

        public async Task<CommandResult> WaitAsync(TimeSpan deadline)
        {
            using var timeout = new CancellationTokenSource(deadline);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'ensemble {string.Join(' ', args)}' did not finish within {deadline}; it printed:\n{await _stdout}\n{await _stderr}");
            }
            return new CommandResult(process.ExitCode, await _stdout, await _stderr);
        }

        public void Dispose()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
        }
    }

    /// <summary>The pid of an environment's node, as bootstrap recorded it.</summary>
    public int NodePid(string environment)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(RecordPath(environment)));
        return json.RootElement.GetProperty("pid").GetInt32();
    }

    public string RecordPath(string environment) => Path.Combine(Home, "environments", environment, "environment.json");

    public string EnvironmentDirectory(string environment) => Path.Combine(Home, "environments", environment);

    /// <summary>
    /// The process's peak resident set so far (VmHWM, bytes), or null once it is gone. The kernel keeps the high-water
    /// mark, so a read just before the process ends sees every peak it had.
    /// </summary>
    public static long? PeakResidentBytes(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The process's resident set now (VmRSS, bytes), or null once it is gone.</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static bool IsRunning(int pid)
    {
        if (!File.Exists($"/proc/{pid}/stat")) return false;
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() != 'Z';
    }
}
