using System.Diagnostics;
using System.Text.Json;

namespace Ensemble.Tests.EndToEnd;

/// <summary>What one run of the ensemble command printed and returned.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Runs the real `ensemble` command (built beside the tests) as a process, with its own ENSEMBLE_HOME.</summary>
public sealed class EnsembleCommand(string home, IReadOnlyDictionary<string, string>? environment = null)
{
    public string Home { get; } = home;

    public static string CliPath => Path.Combine(AppContext.BaseDirectory, "ensemble.dll");

    public async Task<CommandResult> RunAsync(params string[] args) => await RunAsync(TimeSpan.FromMinutes(2), args);

    public async Task<CommandResult> RunAsync(TimeSpan deadline, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CliPath);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["ENSEMBLE_HOME"] = Home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        start.Environment.Remove("ENSEMBLE_ENVIRONMENT");
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'ensemble {string.Join(' ', args)}' did not finish within {deadline}");
        }
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The pid of an environment's node, as bootstrap recorded it.</summary>
    public int NodePid(string environment)
    {
        var record = Path.Combine(Home, "environments", environment, "environment.json");
        using var json = JsonDocument.Parse(File.ReadAllText(record));
        return json.RootElement.GetProperty("pid").GetInt32();
    }

    public static bool IsRunning(int pid)
    {
        if (!File.Exists($"/proc/{pid}/stat")) return false;
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() != 'Z';
    }
}
