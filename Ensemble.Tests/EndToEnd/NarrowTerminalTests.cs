using System.Diagnostics;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// upgrade-formula --wait in a real 40-column terminal (a detached tmux session): the live table of pushed
/// progress is redrawn in place and fits the width, and the last line says how the upgrade ended.
/// </summary>
public sealed class NarrowTerminalTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>, IDisposable
{
    private const int Columns = 40;
    // A tmux server of our own (its own socket), so killing it touches nothing else.
    private readonly string _socket = "ensemble-test-" + Guid.NewGuid().ToString("N")[..10];

    public void Dispose()
    {
        File.Delete(Path.Combine(env.Control, "hold-upgrade-formula"));
        Tmux("kill-server");
    }

    private string Tmux(params string[] args)
    {
        var start = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-L");
        start.ArgumentList.Add(_socket);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var tmux = Process.Start(start) ?? throw new InvalidOperationException("tmux did not start (is it installed?)");
        var stdout = tmux.StandardOutput.ReadToEnd();
        tmux.WaitForExit();
        return stdout;
    }

    /// <summary>The pane as a user sees it, history included, with lines the terminal wrapped joined again.</summary>
    private string[] Screen() => Tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "upgrade").Split('\n');

    [Fact]
    public async Task Upgrade_wait_in_a_40_column_terminal_redraws_a_table_that_fits_and_ends_with_the_outcome()
    {
        TestFormulas.Write(env.Repository, "web", 1);
        var deployed = await env.Ensemble.RunAsync("deploy", "-e", "e2e", "--repository", env.Repository, "-n3", "--wait", "web");
        Assert.True(deployed.ExitCode == 0, deployed.ToString());
        File.WriteAllText(Path.Combine(env.Control, "hold-upgrade-formula"), "");
        TestFormulas.Write(env.Repository, "web", 2);

        var script = Path.Combine(env.Root, "upgrade.sh");
        File.WriteAllText(script, $"""
            export ENSEMBLE_HOME='{env.Ensemble.Home}'
            '{InstalledTool.Command}' upgrade-formula -e e2e --wait web
            echo "exit=$?"

            """);
        var config = Path.Combine(env.Root, "tmux.conf");
        File.WriteAllText(config, "set -g remain-on-exit on\nset -g history-limit 10000\n");
        Tmux("-f", config, "new-session", "-d", "-s", "upgrade", "-x", Columns.ToString(System.Globalization.CultureInfo.InvariantCulture), "-y", "30", $"sh '{script}'");

        var units = new[] { "web/0", "web/1", "web/2" };
        // Every unit's step, as the controller pushed it, is on the screen while the hook holds.
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(units.All(u =>
            Screen().Any(line => line.Contains(u, StringComparison.Ordinal) && line.Contains("upgrading", StringComparison.Ordinal)))),
            TimeSpan.FromSeconds(60), "every unit shown in its upgrade step");
        File.Delete(Path.Combine(env.Control, "hold-upgrade-formula"));
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Screen().Any(l => l.StartsWith("exit=", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(60), "upgrade-formula --wait to end");

        var screen = Screen();
        output.WriteLine(string.Join('\n', screen));
        Assert.All(screen, line => Assert.True(line.Length <= Columns, $"a line of {line.Length} columns: '{line}'"));
        // Redrawn in place: one table, not a trail of fragments.
        Assert.Single(screen, line => line.Contains("UNIT", StringComparison.Ordinal) && line.Contains("PROGRESS", StringComparison.Ordinal));
        foreach (var unit in units)
            Assert.Contains(screen, line => line.Contains(unit, StringComparison.Ordinal) && line.Contains("upgraded", StringComparison.Ordinal));
        // What the command printed ends where the script's own line is (tmux adds its "Pane is dead" below).
        var lines = screen.Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
        var end = lines.FindIndex(l => l.StartsWith("exit=", StringComparison.Ordinal));
        Assert.Equal("exit=0", lines[end]);
        Assert.Equal("all 3 units of 'web' run local:web-2", lines[end - 1]);
    }
}
