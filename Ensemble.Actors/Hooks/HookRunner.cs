using System.Diagnostics;
using System.Globalization;

namespace Ensemble.Hooks;

/// <summary>
/// Everything a hook is told about the unit it runs for. <paramref name="Environment"/> is set on the hook
/// process after the inherited ENSEMBLE_* variables are dropped (the unit agent passes the hook tools' socket
/// and token, and a relation hook's relation, through it); <paramref name="ToolsDirectory"/> goes first on its PATH.
/// </summary>
public sealed record HookContext(
    string UnitName,
    string ServiceName,
    string FormulaDirectory,
    string DataDirectory,
    int Revision,
    string LogPath,
    int? PreviousRevision = null,
    string? ProcessFile = null,
    IReadOnlyDictionary<string, string>? Environment = null,
    string? ToolsDirectory = null);

/// <summary>What became of one hook run. A hook the formula does not have is skipped, which counts as success.</summary>
public sealed record HookResult(string Hook, bool Ran, int ExitCode, bool TimedOut)
{
    public bool Succeeded => !Ran || (ExitCode == 0 && !TimedOut);

    public string Describe() => !Ran ? $"hook '{Hook}' not present, skipped"
        : TimedOut ? $"hook '{Hook}' timed out and was killed"
        : $"hook '{Hook}' exited with code {ExitCode}";
}

/// <summary>Runs a formula's hooks for a unit.</summary>
public interface IHookRunner
{
    Task<HookResult> RunAsync(string hook, HookContext context, CancellationToken cancellationToken);
}

/// <summary>
/// Runs hooks as real processes: working directory the formula directory, the ENSEMBLE_* environment,
/// output appended with timestamps to the unit's log, and the whole process tree killed at the timeout
/// or when the caller cancels (an agent that restarts must not leave a hook running beside its re-run).
/// </summary>
/// At most <c>maxParallel</c> hooks of the machine run at once (the others wait their turn before their
/// timeout starts), so a thousand units deployed together do not fork a thousand hooks into two cores
/// and leave the agent too starved to answer.
public sealed class ProcessHookRunner(TimeSpan timeout, int maxParallel = int.MaxValue) : IHookRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    /// <summary>A default for a machine: a few hooks per core keeps the machine busy without thrashing it.</summary>
    public static int DefaultMaxParallel => Math.Max(4, Environment.ProcessorCount * 4);

    private readonly SemaphoreSlim _slots = new(Math.Max(1, Math.Min(maxParallel, 100_000)));

    public TimeSpan Timeout => timeout;

    private static readonly TimeSpan OutputDrainLimit = TimeSpan.FromSeconds(2);

    public async Task<HookResult> RunAsync(string hook, HookContext context, CancellationToken cancellationToken)
    {
        var path = Path.Combine(context.FormulaDirectory, "hooks", hook);
        if (!File.Exists(path)) return new HookResult(hook, Ran: false, ExitCode: 0, TimedOut: false);
        return await RunProcessAsync(path, hook, context, cancellationToken);
    }

    /// <summary>
    /// One of the machine's hook slots, held from just before the hook process starts until it has exited: what is
    /// bounded is processes running, not the bookkeeping around them (opening the log, reading what the hook left
    /// on its pipes), which would otherwise keep a waiting hook out for nothing.
    /// </summary>
    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _held = 1;

        public static async Task<Slot> TakeAsync(SemaphoreSlim slots, CancellationToken token)
        {
            await slots.WaitAsync(token);
            return new Slot(slots);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _held, 0) == 1) slots.Release();
        }
    }

    private async Task<HookResult> RunProcessAsync(string path, string hook, HookContext context, CancellationToken cancellationToken)
    {

        Directory.CreateDirectory(Path.GetDirectoryName(context.LogPath)!);
        // A hook of this unit left running by an agent that died (kill -9, power cut) must not overlap this run.
        if (context.ProcessFile is { } processFile) await HookProcessFile.KillLeftoverAsync(processFile);
        await using var log = new HookLog(context.LogPath, hook);
        ActiveLogs[Path.GetFullPath(context.LogPath)] = log;
        using var slot = await Slot.TakeAsync(_slots, cancellationToken);
        // Counted from here: a hook waiting for its slot is not running yet.
        var started = Telemetry.EnsembleMetrics.Hooks.Starting(hook);
        HookResult? result = null;
        try
        {
            return result = await RunStartedAsync(path, hook, context, log, slot, cancellationToken);
        }
        finally
        {
            Telemetry.EnsembleMetrics.Hooks.Ran(hook, result, context, started);
        }
    }

    /// <summary>Runs the hook process once its slot is held; the slot is given back as soon as the process has exited.</summary>
    private async Task<HookResult> RunStartedAsync(string path, string hook, HookContext context, HookLog log, Slot slot, CancellationToken cancellationToken)
    {
        log.Write($"running hook {hook} (revision {context.Revision})");

        var start = new ProcessStartInfo(path)
        {
            WorkingDirectory = context.FormulaDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var env = start.Environment;
        // Only what this run sets: an agent started from inside a hook must not pass its own ENSEMBLE_* on.
        foreach (var inherited in env.Keys.Where(k => k.StartsWith("ENSEMBLE_", StringComparison.Ordinal)).ToList())
            env.Remove(inherited);
        env["ENSEMBLE_UNIT_NAME"] = context.UnitName;
        env["ENSEMBLE_SERVICE_NAME"] = context.ServiceName;
        env["ENSEMBLE_FORMULA_DIR"] = context.FormulaDirectory;
        env["ENSEMBLE_UNIT_DATA_DIR"] = context.DataDirectory;
        env["ENSEMBLE_FORMULA_REVISION"] = context.Revision.ToString(CultureInfo.InvariantCulture);
        env["ENSEMBLE_HOOK_NAME"] = hook;
        if (context.PreviousRevision is { } previous)
            env["ENSEMBLE_PREVIOUS_REVISION"] = previous.ToString(CultureInfo.InvariantCulture);
        if (context.Environment is { } extra)
            foreach (var (name, value) in extra) env[name] = value;
        if (context.ToolsDirectory is { } tools)
            // Without a PATH of its own a shell searches a default one; the hook must keep finding its commands.
            env["PATH"] = $"{tools}{Path.PathSeparator}{(env.TryGetValue("PATH", out var inheritedPath) && !string.IsNullOrEmpty(inheritedPath) ? inheritedPath : "/usr/local/bin:/usr/bin:/bin")}";

        using var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.Exited += (_, _) => exited.TrySetResult();
        var outputClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var errorClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) => { if (e.Data is null) outputClosed.TrySetResult(); else log.Write(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is null) errorClosed.TrySetResult(); else log.Write(e.Data); };
        try
        {
            await StartAsync(process, cancellationToken);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            log.Write($"hook {hook} could not be executed: {ex.Message}; give it a '#!' line and the execute bit");
            return new HookResult(hook, Ran: true, ExitCode: 126, TimedOut: false);
        }
        if (context.ProcessFile is { } recorded) HookProcessFile.Record(recorded, process.Id);
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var timedOut = false;
        try
        {
            // Not WaitForExitAsync: it also waits for the end of the output, which a daemon the hook
            // started may hold open for ever.
            await exited.Task.WaitAsync(deadline.Token);
            slot.Dispose();
        }
        catch (OperationCanceledException)
        {
            timedOut = !cancellationToken.IsCancellationRequested;
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await exited.Task;
            slot.Dispose();
            if (context.ProcessFile is { } killed) HookProcessFile.Clear(killed);
            log.Write(timedOut ? $"hook {hook} timed out after {timeout.TotalSeconds:0.#}s; process tree killed" : $"hook {hook} cancelled; process tree killed");
            cancellationToken.ThrowIfCancellationRequested();
        }
        // Let the readers drain what the hook wrote; bounded, because a daemon the hook started may
        // hold the pipes open for ever (formula authors should redirect a daemon's output).
        try { await Task.WhenAll(outputClosed.Task, errorClosed.Task).WaitAsync(OutputDrainLimit, CancellationToken.None); }
        catch (TimeoutException) { log.Write($"hook {hook} left a process holding its output open; redirect a daemon's output"); }
        var code = timedOut ? -1 : process.ExitCode;
        if (context.ProcessFile is { } done) HookProcessFile.Clear(done);
        if (!timedOut) log.Write($"hook {hook} exited with code {code}");
        return new HookResult(hook, Ran: true, ExitCode: code, TimedOut: timedOut);
    }

    private const int TextFileBusy = 26; // ETXTBSY

    /// <summary>
    /// Starts the hook. A freshly unpacked hook can be briefly "text file busy": another thread of this
    /// process forking a hook at that moment gives its child a copy of the unpacker's write handle until
    /// that child execs. The window is short, so a few quick retries get past it.
    /// </summary>
    private static async Task StartAsync(Process process, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                process.Start();
                return;
            }
            catch (System.ComponentModel.Win32Exception ex) when (ex.NativeErrorCode == TextFileBusy && attempt < 20)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5 * attempt), cancellationToken);
            }
        }
    }

    /// <summary>Appends timestamped lines; stdout and stderr arrive on different threads.</summary>
    /// <summary>The log of each hook running now, by path: lines its hook tools log (ensemble-log) go through the same writer.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, HookLog> ActiveLogs = new(StringComparer.Ordinal);

    /// <summary>
    /// Writes a line into the log of the hook running for <paramref name="logPath"/>, through that run's own writer (two
    /// writers of one file would write over each other's lines); false when no hook of that log runs now.
    /// </summary>
    public static bool TryLog(string logPath, string line)
    {
        if (!ActiveLogs.TryGetValue(Path.GetFullPath(logPath), out var log)) return false;
        log.Write(line);
        return true;
    }

    private sealed class HookLog(string path, string hook) : IAsyncDisposable
    {
        private readonly StreamWriter _writer = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        private readonly Lock _gate = new();

        private bool _closed;

        /// <summary>
        /// Appends a line; a line from a reader that outlives the hook run is dropped, not a crash, and so are
        /// lines a failing disk refuses (this runs on the output readers' threads, where an exception would
        /// end the whole process). The hook itself goes on; the first refusal is kept for the caller.
        /// </summary>
        public void Write(string line)
        {
            var stamp = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            lock (_gate)
            {
                if (_closed || Failure is not null) return;
                try { _writer.WriteLine($"{stamp} [{hook}] {line}"); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { Failure = ex; }
            }
        }

        /// <summary>Why the log stopped taking lines, if it did.</summary>
        public Exception? Failure { get; private set; }

        public ValueTask DisposeAsync()
        {
            ActiveLogs.TryRemove(KeyValuePair.Create(Path.GetFullPath(path), this));
            lock (_gate)
            {
                _closed = true;
                try { _writer.Dispose(); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { Failure ??= ex; }
            }
            return ValueTask.CompletedTask;
        }
    }
}
