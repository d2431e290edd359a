using System.Text.RegularExpressions;
using Ensemble.Hooks;
using Ensemble.Tests.Units;
using Xunit;

namespace Ensemble.Tests.Hooks;

public sealed class ProcessHookRunnerTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly Regex LogLine = new(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \[(?<hook>[^\]]+)\] (?<text>.*)$");

    private readonly ScratchDirectory scratch = new("ensemble-hooks");
    private readonly HookContext context;

    public ProcessHookRunnerTests()
    {
        var formula = scratch.Combine("units", "wordpress-0", "formula");
        var data = scratch.Combine("units", "wordpress-0", "data");
        Directory.CreateDirectory(Path.Combine(formula, "hooks"));
        Directory.CreateDirectory(data);
        context = new HookContext("wordpress/0", "wordpress", formula, data, 7, scratch.Combine("units", "wordpress-0", "unit.log"));
    }

    public void Dispose() => scratch.Dispose();

    private void WriteHook(string hook, string body)
    {
        var path = Path.Combine(context.FormulaDirectory, "hooks", hook);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string DataFile(string name) => Path.Combine(context.DataDirectory, name);

    /// <summary>(hook, text) of every log line; fails on a line without the timestamp and tag.</summary>
    private List<(string Hook, string Text)> LogEntries() => File.ReadAllLines(context.LogPath).Select(line =>
    {
        var match = LogLine.Match(line);
        Assert.True(match.Success, $"log line without timestamp and [hook] tag: '{line}'");
        return (match.Groups["hook"].Value, match.Groups["text"].Value);
    }).ToList();

    private static bool IsGone(int pid)
    {
        // A killed process whose reaper has not collected it yet is a zombie: dead, only not yet reaped.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is "Z" or "X";
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return true;
        }
    }

    private async Task<int> WaitForPidAsync(string file)
    {
        Assert.True(await ScratchDirectory.EventuallyAsync(
            () => File.Exists(file) && File.ReadAllText(file).Trim().Length > 0 && File.ReadAllText(file).EndsWith('\n'), Deadline),
            $"the hook never wrote {file}");
        return int.Parse(File.ReadAllText(file).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_hook_runs_in_the_formula_directory_with_the_ensemble_environment()
    {
        WriteHook("install", """
            out="$ENSEMBLE_UNIT_DATA_DIR/env.txt"
            echo "pwd=$(pwd)" > "$out"
            echo "unit=$ENSEMBLE_UNIT_NAME" >> "$out"
            echo "service=$ENSEMBLE_SERVICE_NAME" >> "$out"
            echo "formula=$ENSEMBLE_FORMULA_DIR" >> "$out"
            echo "data=$ENSEMBLE_UNIT_DATA_DIR" >> "$out"
            echo "revision=$ENSEMBLE_FORMULA_REVISION" >> "$out"
            echo "hook=$ENSEMBLE_HOOK_NAME" >> "$out"
            echo "previous=${ENSEMBLE_PREVIOUS_REVISION-unset}" >> "$out"
            """);

        var result = await new ProcessHookRunner(Deadline).RunAsync("install", context, CancellationToken.None);

        Assert.True(result.Ran);
        Assert.True(result.Succeeded);
        Assert.Equal(0, result.ExitCode);
        Assert.False(result.TimedOut);
        Assert.Equal(
            [
                $"pwd={context.FormulaDirectory}",
                "unit=wordpress/0",
                "service=wordpress",
                $"formula={context.FormulaDirectory}",
                $"data={context.DataDirectory}",
                "revision=7",
                "hook=install",
                "previous=unset",
            ],
            File.ReadAllLines(DataFile("env.txt")));
    }

    [Fact]
    public async Task The_previous_revision_is_exported_only_when_given()
    {
        WriteHook("upgrade-formula", """echo "previous=${ENSEMBLE_PREVIOUS_REVISION-unset}" > "$ENSEMBLE_UNIT_DATA_DIR/previous.txt" """);

        var result = await new ProcessHookRunner(Deadline).RunAsync("upgrade-formula", context with { PreviousRevision = 4 }, CancellationToken.None);

        Assert.True(result.Succeeded);
        Assert.Equal(["previous=4"], File.ReadAllLines(DataFile("previous.txt")));
    }

    [Fact]
    public async Task Stdout_and_stderr_are_appended_to_the_log_with_timestamps_across_runs()
    {
        WriteHook("start", """
            echo "to stdout $ENSEMBLE_FORMULA_REVISION"
            echo "to stderr $ENSEMBLE_FORMULA_REVISION" >&2
            """);
        var runner = new ProcessHookRunner(Deadline);

        Assert.True((await runner.RunAsync("start", context, CancellationToken.None)).Succeeded);
        Assert.True((await runner.RunAsync("start", context with { Revision = 8 }, CancellationToken.None)).Succeeded);

        var entries = LogEntries();
        Assert.All(entries, e => Assert.Equal("start", e.Hook));
        var texts = entries.Select(e => e.Text).ToList();
        foreach (var expected in new[] { "to stdout 7", "to stderr 7", "to stdout 8", "to stderr 8" })
            Assert.Contains(expected, texts);
        // The first run's lines come before the second's: the log was appended to, not rewritten.
        Assert.True(texts.IndexOf("to stdout 7") < texts.IndexOf("to stdout 8"));
        Assert.True(texts.IndexOf("to stderr 7") < texts.IndexOf("to stderr 8"));
        Assert.Equal(2, texts.Count(t => t.StartsWith("running hook start", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Lines_already_in_the_log_are_kept()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(context.LogPath)!);
        File.WriteAllText(context.LogPath, "2000-01-01T00:00:00.000Z [agent] earlier line\n");
        WriteHook("stop", "echo stopping");

        await new ProcessHookRunner(Deadline).RunAsync("stop", context, CancellationToken.None);

        var entries = LogEntries();
        Assert.Equal(("agent", "earlier line"), entries[0]);
        Assert.Contains(("stop", "stopping"), entries);
    }

    [Fact]
    public async Task A_non_zero_exit_is_reported()
    {
        WriteHook("install", "echo broken >&2\nexit 7");

        var result = await new ProcessHookRunner(Deadline).RunAsync("install", context, CancellationToken.None);

        Assert.True(result.Ran);
        Assert.False(result.TimedOut);
        Assert.Equal(7, result.ExitCode);
        Assert.False(result.Succeeded);
        Assert.Contains("7", result.Describe());
        Assert.Contains(("install", "broken"), LogEntries());
        Assert.Contains(("install", "hook install exited with code 7"), LogEntries());
    }

    [Fact]
    public async Task A_missing_hook_is_skipped_and_counts_as_success()
    {
        var result = await new ProcessHookRunner(Deadline).RunAsync("config-changed", context, CancellationToken.None);

        Assert.False(result.Ran);
        Assert.True(result.Succeeded);
        Assert.False(result.TimedOut);
        Assert.Contains("skipped", result.Describe());
        Assert.False(File.Exists(context.LogPath));
    }

    [Fact]
    public async Task A_timed_out_hook_is_killed_with_its_whole_process_tree()
    {
        var pidFile = DataFile("background.pid");
        WriteHook("start", $"""
            sleep 60 > /dev/null 2>&1 &
            echo $! > "{pidFile}"
            wait
            """);
        // Long enough for a loaded machine to reach the 'wait', short enough to keep the test quick.
        var runner = new ProcessHookRunner(TimeSpan.FromSeconds(3));

        var result = await runner.RunAsync("start", context, CancellationToken.None).WaitAsync(Deadline);

        Assert.True(result.Ran);
        Assert.True(result.TimedOut);
        Assert.False(result.Succeeded);
        Assert.Contains("timed out", result.Describe());
        var pid = await WaitForPidAsync(pidFile);
        Assert.True(await ScratchDirectory.EventuallyAsync(() => IsGone(pid), Deadline), $"background sleep {pid} survived the timeout");
        Assert.Contains(LogEntries(), e => e.Text.Contains("timed out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancelling_kills_the_process_tree_and_throws()
    {
        var pidFile = DataFile("background.pid");
        WriteHook("stop", $"""
            sleep 60 > /dev/null 2>&1 &
            echo $! > "{pidFile}"
            wait
            """);
        using var cancel = new CancellationTokenSource();
        var run = new ProcessHookRunner(TimeSpan.FromMinutes(5)).RunAsync("stop", context, cancel.Token);

        var pid = await WaitForPidAsync(pidFile);
        Assert.False(IsGone(pid));
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Deadline));
        Assert.True(await ScratchDirectory.EventuallyAsync(() => IsGone(pid), Deadline), $"background sleep {pid} survived cancellation");
        Assert.Contains(LogEntries(), e => e.Text.Contains("cancelled", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_start_hook_that_leaves_a_daemon_holding_its_output_returns_when_the_hook_exits()
    {
        // A start hook commonly launches a daemon in the background without redirecting its output.
        // The hook itself exits 0 at once; the daemon keeps the stdout/stderr pipes open.
        var pidFile = DataFile("daemon.pid");
        WriteHook("start", $"""
            sleep 20 &
            echo $! > "{pidFile}"
            echo daemon started
            exit 0
            """);
        var runner = new ProcessHookRunner(TimeSpan.FromSeconds(10));
        int? daemon = null;
        try
        {
            var result = await runner.RunAsync("start", context, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            daemon = await WaitForPidAsync(pidFile);

            // The runner must report the hook's own exit, not wait for the daemon and call it a timeout.
            Assert.False(result.TimedOut, "a hook that exited 0 at once was reported as timed out");
            Assert.Equal(0, result.ExitCode);
            Assert.True(result.Succeeded);
            Assert.False(IsGone(daemon.Value), "the runner returned only after the daemon had ended");
        }
        finally
        {
            daemon ??= File.Exists(pidFile) ? int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture) : null;
            if (daemon is { } pid && !IsGone(pid))
            {
                try { System.Diagnostics.Process.GetProcessById(pid).Kill(); }
                catch (ArgumentException) { }
                catch (InvalidOperationException) { }
            }
        }
    }

    [Fact]
    public async Task A_hook_gets_no_standard_input()
    {
        WriteHook("install", """
            if read line; then echo "read: $line" > "$ENSEMBLE_UNIT_DATA_DIR/stdin.txt"; else echo eof > "$ENSEMBLE_UNIT_DATA_DIR/stdin.txt"; fi
            """);

        var result = await new ProcessHookRunner(Deadline).RunAsync("install", context, CancellationToken.None).WaitAsync(Deadline);

        Assert.True(result.Succeeded);
        Assert.Equal(["eof"], File.ReadAllLines(DataFile("stdin.txt")));
    }

    [Fact]
    public async Task A_hook_left_running_by_a_dead_agent_is_killed_with_its_children_before_the_next_run()
    {
        // What a killed agent leaves behind: a hook (with a child of its own) that nobody waits for.
        WriteHook("upgrade-formula", """
            sleep 300 &
            echo $! > "$ENSEMBLE_UNIT_DATA_DIR/child.pid"
            while true; do sleep 0.05; done
            """);
        WriteHook("start", """echo started > "$ENSEMBLE_UNIT_DATA_DIR/started.txt" """);
        var processFile = scratch.Combine("units", "wordpress-0", "hook.pid");
        var orphan = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Path.Combine(context.FormulaDirectory, "hooks", "upgrade-formula"))
        {
            Environment = { ["ENSEMBLE_UNIT_DATA_DIR"] = context.DataDirectory },
        })!;
        try
        {
            var child = await WaitForPidAsync(DataFile("child.pid"));
            HookProcessFile.Record(processFile, orphan.Id);

            var result = await new ProcessHookRunner(Deadline).RunAsync("start", context with { ProcessFile = processFile }, CancellationToken.None);

            Assert.True(result.Succeeded);
            Assert.True(await ScratchDirectory.EventuallyAsync(() => IsGone(orphan.Id) && IsGone(child), Deadline),
                "the orphaned hook or its child still runs beside the new hook");
            Assert.Equal(["started"], File.ReadAllLines(DataFile("started.txt")));
            Assert.Null(HookProcessFile.Read(processFile)); // the record outlived the hook it names otherwise
        }
        finally
        {
            if (!orphan.HasExited) orphan.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_recorded_pid_now_used_by_another_process_is_left_alone()
    {
        WriteHook("start", "true");
        var processFile = scratch.Combine("units", "wordpress-0", "hook.pid");
        // Our own pid, with a start time it never had: the recorded hook is long gone and its pid reused.
        File.WriteAllText(processFile, $"{Environment.ProcessId} 1\n");

        var result = await new ProcessHookRunner(Deadline).RunAsync("start", context with { ProcessFile = processFile }, CancellationToken.None);

        Assert.True(result.Succeeded);
        Assert.Null(HookProcessFile.Read(processFile));
    }

    [Fact]
    public async Task No_more_hooks_than_allowed_run_at_once_and_the_others_wait_their_turn()
    {
        // Each run marks itself running, waits for the gate file to go, then unmarks itself.
        WriteHook("install", """
            touch "$ENSEMBLE_UNIT_DATA_DIR/running-$$"
            while [ -f "$ENSEMBLE_UNIT_DATA_DIR/gate" ]; do sleep 0.02; done
            rm "$ENSEMBLE_UNIT_DATA_DIR/running-$$"
            echo done >> "$ENSEMBLE_UNIT_DATA_DIR/finished"
            """);
        File.WriteAllText(DataFile("gate"), "");
        var runner = new ProcessHookRunner(Deadline, maxParallel: 2);
        int Running() => Directory.GetFiles(context.DataDirectory, "running-*").Length;

        var runs = Enumerable.Range(0, 5).Select(_ => runner.RunAsync("install", context, CancellationToken.None)).ToList();
        Assert.True(await ScratchDirectory.EventuallyAsync(() => Running() == 2, Deadline), "two hooks never ran together");
        // All five were asked for at once: without the limit the other three would be running by now.
        Assert.False(await ScratchDirectory.EventuallyAsync(() => Running() > 2, TimeSpan.FromSeconds(1)),
            $"{Running()} hooks ran at once with room for 2");
        File.Delete(DataFile("gate"));

        var results = await Task.WhenAll(runs).WaitAsync(Deadline);
        Assert.All(results, r => Assert.True(r.Succeeded));
        Assert.Equal(5, File.ReadAllLines(DataFile("finished")).Length);
    }
}
