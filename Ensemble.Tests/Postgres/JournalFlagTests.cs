using System.Diagnostics;
using Ensemble.TestKit.Postgres;
using Xunit;

namespace Ensemble.Tests.Postgres;

/// <summary>The node program's --journal: a controller journals to PostgreSQL, the password from PGPASSWORD; bad uses are refused with one sentence.</summary>
public sealed class JournalFlagTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-journal-flag-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static Process StartNode(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ensemble.Agent.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("ENSEMBLE_JOURNAL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        return Process.Start(start)!;
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunNodeAsync(params string[] args)
    {
        using var process = StartNode(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task The_usage_names_the_flag_and_where_the_password_comes_from_and_bad_uses_exit_2()
    {
        var help = await RunNodeAsync("--help");
        Assert.Contains("--journal CONNECTION", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("PGPASSWORD", help.Stdout, StringComparison.Ordinal);

        var agent = await RunNodeAsync("--data-dir", Path.Combine(_root, "a"), "--roles", "agent", "--join", "127.0.0.1:1", "--token", "t",
            "--journal", "Host=127.0.0.1;Database=ensemble");
        Assert.Equal(2, agent.ExitCode);
        Assert.Contains("--journal is the controller's journal", agent.Stderr, StringComparison.Ordinal);

        var garbled = await RunNodeAsync("--data-dir", Path.Combine(_root, "b"), "--journal", "Host=127.0.0.1;Nonsense Key=1");
        Assert.Equal(2, garbled.ExitCode);
        Assert.Contains("--journal takes a Npgsql connection string", garbled.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "b")));
    }

    [Fact]
    public async Task A_controller_whose_database_refuses_the_login_does_not_start_and_says_which_database()
    {
        using var postgres = new LocalPostgresServer();
        var wrong = new Npgsql.NpgsqlConnectionStringBuilder(postgres.ConnectionString) { Password = "wrong" }.ConnectionString;

        var refused = await RunNodeAsync("--data-dir", Path.Combine(_root, "data"), "--journal", wrong);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"PostgreSQL database 'ensemble' on 127.0.0.1:{postgres.Port}", refused.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong", refused.Stderr.Replace("password authentication failed", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_controller_started_with_journal_and_PGPASSWORD_journals_to_PostgreSQL_and_has_no_journal_file()
    {
        using var postgres = new LocalPostgresServer();
        var data = Path.Combine(_root, "data");
        var ready = Path.Combine(_root, "ready.json");
        using var node = StartNode(
            ["--data-dir", data, "--journal", postgres.ConnectionStringWithoutPassword, "--ready-file", ready],
            new Dictionary<string, string> { ["PGPASSWORD"] = postgres.Password });
        node.OutputDataReceived += (_, _) => { };
        node.ErrorDataReceived += (_, _) => { };
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        try
        {
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(File.Exists(ready) || node.HasExited), TimeSpan.FromSeconds(60), "the node to start");
            Assert.False(node.HasExited, "the node exited while starting");
            // The controller checked its database at start (the journal's own tables come with the first event).
            Assert.Equal(2, PostgresFixture.Count(postgres.ConnectionString,
                "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('ensemble_formula_bundles', 'ensemble_formula_chunks')"));
            Assert.False(File.Exists(Path.Combine(data, "journal.db")));
        }
        finally
        {
            node.Kill(entireProcessTree: true);
            await node.WaitForExitAsync();
        }
    }
}
