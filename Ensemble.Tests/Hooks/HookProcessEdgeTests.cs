using Ensemble.Hooks;
using Xunit;

namespace Ensemble.Tests.Hooks;

/// <summary>Hooks that start daemons or cannot be executed at all.</summary>
public sealed class HookProcessEdgeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-hook-edge-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private HookContext Context(string formulaDir) => new("svc/0", "svc", formulaDir, Path.Combine(_root, "data"), 1, Path.Combine(_root, "unit.log"));

    private string WriteHook(string name, string body, bool executable = true)
    {
        var formula = Path.Combine(_root, "formula");
        Directory.CreateDirectory(Path.Combine(formula, "hooks"));
        Directory.CreateDirectory(Path.Combine(_root, "data"));
        var path = Path.Combine(formula, "hooks", name);
        File.WriteAllText(path, body);
        if (executable) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return formula;
    }

    [Fact]
    public async Task A_start_hook_that_leaves_a_daemon_holding_its_output_still_finishes()
    {
        var formula = WriteHook("start", """
            #!/bin/sh
            sleep 120 &
            echo $! > "$ENSEMBLE_UNIT_DATA_DIR/daemon.pid"
            echo started
            """);
        var result = await new ProcessHookRunner(TimeSpan.FromSeconds(20)).RunAsync("start", Context(formula), CancellationToken.None);

        var pid = int.Parse(File.ReadAllText(Path.Combine(_root, "data", "daemon.pid")).Trim());
        try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
        Assert.False(result.TimedOut, "the hook exited; a daemon holding its output must not make it time out");
        Assert.True(result.Succeeded);
        Assert.Contains("[start] started", File.ReadAllText(Path.Combine(_root, "unit.log")));
    }

    [Fact]
    public async Task A_hook_that_cannot_be_executed_is_a_failed_hook_with_a_hint_in_the_log()
    {
        var formula = WriteHook("install", "echo no interpreter line\n");
        File.WriteAllBytes(Path.Combine(formula, "hooks", "install"), [0x7f, 0x45, 0x4c, 0x46, 0, 0, 0]);
        var result = await new ProcessHookRunner(TimeSpan.FromSeconds(20)).RunAsync("install", Context(formula), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal(126, result.ExitCode);
        Assert.Contains("could not be executed", File.ReadAllText(Path.Combine(_root, "unit.log")));
    }
}
