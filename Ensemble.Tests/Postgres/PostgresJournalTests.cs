using Akka.Actor;
using Ensemble.Formulas;
using Ensemble.Hosting;
using Ensemble.Services;
using Ensemble.Tests.Support;
using Ensemble.TestKit.Postgres;
using Ensemble.TestKit.ZooKeeper;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Postgres;

/// <summary>
/// A node journaling to PostgreSQL (--journal): a new controller on another data directory, the same database and the
/// same ZooKeeper, knows the services and serves their bundles; PostgreSQL restarted under a running node.
/// </summary>
public sealed class PostgresJournalTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-pg-node-").FullName;
    private readonly LocalPostgresServer _postgres = new();
    private readonly LocalZooKeeperServer _zookeeper = new();

    public void Dispose()
    {
        _zookeeper.Dispose();
        _postgres.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private NodeOptions Options(string dataDirectory) => new(Path.Combine(_root, dataDirectory), "pg-test",
        new HashSet<string> { NodeOptions.ControllerRole, NodeOptions.AgentRole }, "machine-0", ZooKeeper: _zookeeper.ConnectionString)
    {
        Journal = _postgres.ConnectionString,
    };

    private static Task<object> AskAsync(EnsembleNode node, object message, TimeSpan? timeout = null) =>
        node.System.ActorSelection(EnsembleNode.ServicesPath).Ask<object>(message, timeout ?? TimeSpan.FromSeconds(30));

    private static ServiceClient Client(EnsembleNode node) => new(new NodeChannel(node.System));

    private static string TraceOf(EnsembleNode node, string unit) =>
        UnitPaths.For(UnitPaths.UnitsDirectory(node.Options.MachineDirectory), unit).DataDirectory;

    private static Task WaitForHookAsync(EnsembleNode node, string unit, string line) =>
        LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(TraceOf(node, unit)).Contains(line)), Deadline, $"{unit}: {line}");

    private long Count(string sql) => PostgresFixture.Count(_postgres.ConnectionString, sql);

    [Fact]
    public async Task A_new_controller_on_the_same_database_knows_the_service_and_serves_its_bundles()
    {
        var repository = Path.Combine(_root, "repository");
        TestFormulas.Write(repository, "app", 1);
        string sha1;
        await using (var first = await EnsembleNode.StartAsync(Options("first")))
        {
            Assert.IsType<ServiceDeployed>(await Client(first).DeployAsync("app", "app", repository, 1));
            await WaitForHookAsync(first, "app/0", "start 1 end");
        }
        // The journal and the bundle are in the database, not only on the first controller's disk.
        Assert.True(Count("SELECT count(*) FROM journal") > 0);
        Assert.Equal(1, Count("SELECT count(*) FROM ensemble_formula_bundles"));
        sha1 = Text("SELECT sha256 FROM ensemble_formula_bundles");
        Assert.False(File.Exists(Path.Combine(_root, "second", "journal.db")));

        Assert.False(Directory.Exists(Path.Combine(_root, "second")));
        await using var second = await EnsembleNode.StartAsync(Options("second"));
        var cache = new FileFormulaStorage(second.Options.FormulaStorageDirectory);

        // The service is known (its coordinator recovered from the shared journal), and the unit it adds is installed
        // from the bundle the first controller stored.
        var added = Assert.IsType<UnitsAdded>(await AskAsync(second, new AddUnits("app", 1)));
        output.WriteLine($"added {string.Join(", ", added.Units)}");
        await WaitForHookAsync(second, added.Units[0], "start 1 end");
        // This machine's data directory is new too: its agent reinstalls app/0 and installs the new unit, both from
        // the bundle the new controller read from the database into its cache.
        await WaitForHookAsync(second, "app/0", "start 1 end");
        Assert.True(cache.Contains(sha1));

        // An upgrade from the new controller: a new revision uploaded to it, every unit on it.
        TestFormulas.Write(repository, "app", 2);
        Assert.IsType<UpgradeStarted>(await Client(second).UpgradeAsync("app"));
        await LocalEnvironment.WaitUntilAsync(async () => await AskAsync(second, new GetUpgradeStatus("app")) is UpgradeStatus { Running: false },
            Deadline, "the upgrade to end");
        var status = Assert.IsType<UpgradeStatus>(await AskAsync(second, new GetUpgradeStatus("app")));
        output.WriteLine($"status: {status}");
        Assert.Equal(new FormulaId("app", 2), status.Target);
        Assert.Empty(status.Failed);
        await WaitForHookAsync(second, added.Units[0], "start 2 end");
        Assert.Equal(2, Count("SELECT count(*) FROM ensemble_formula_bundles"));
    }

    private string Text(string sql)
    {
        using var connection = new Npgsql.NpgsqlConnection(_postgres.ConnectionString);
        connection.Open();
        using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return (string)command.ExecuteScalar()!;
    }

    [Fact]
    public async Task Journal_writes_fail_while_PostgreSQL_is_down_and_work_again_once_it_is_back()
    {
        var repository = Path.Combine(_root, "repository");
        TestFormulas.Write(repository, "app", 1);
        await using var node = await EnsembleNode.StartAsync(Options("node"));
        Assert.IsType<ServiceDeployed>(await Client(node).DeployAsync("app", "app", repository, 1));
        await WaitForHookAsync(node, "app/0", "start 1 end");

        _postgres.Kill();
        object whileDown;
        try
        {
            whileDown = await AskAsync(node, new AddUnits("app", 1), TimeSpan.FromSeconds(60));
        }
        catch (AskTimeoutException e)
        {
            whileDown = e;
        }
        output.WriteLine($"AddUnits while PostgreSQL is down: {whileDown}");
        var rejected = Assert.IsType<CommandRejected>(whileDown);
        Assert.Equal(RejectionKind.Unavailable, rejected.Kind);
        Assert.Contains($"PostgreSQL database 'ensemble' on 127.0.0.1:{_postgres.Port}", rejected.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_postgres.Password, rejected.Reason, StringComparison.Ordinal);

        // The coordinator stopped after the failed write (Akka.Persistence's rule) and is being started again with
        // backoff: meanwhile the service is unavailable, never "not deployed".
        object statusWhileDown = "nothing";
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            try { statusWhileDown = await AskAsync(node, new GetUpgradeStatus("app"), TimeSpan.FromSeconds(5)); }
            catch (AskTimeoutException) { return false; } // asked the coordinator in the instant it stopped
            Assert.False(statusWhileDown is CommandRejected { Kind: RejectionKind.NotFound }, $"a stopped coordinator's service was called not deployed: {statusWhileDown}");
            return statusWhileDown is CommandRejected { Kind: RejectionKind.Unavailable };
        }, Deadline, $"the status of app to say it is unavailable while PostgreSQL is down (last reply: {statusWhileDown})");
        output.WriteLine($"GetUpgradeStatus while PostgreSQL is down: {statusWhileDown}");
        Assert.Contains("journal", ((CommandRejected)statusWhileDown).Reason, StringComparison.Ordinal);

        await _postgres.StartAsync();
        // The coordinator comes back by itself and takes requests again.
        object addedAfter = "nothing";
        await LocalEnvironment.WaitUntilAsync(async () =>
            (addedAfter = await AskAsync(node, new AddUnits("app", 1))) is UnitsAdded, Deadline, $"app's coordinator to take requests once PostgreSQL is back (last reply: {addedAfter})");

        // The journal takes writes again: a new coordinator journals its deploy.
        TestFormulas.Write(repository, "other", 1);
        object deployed = "nothing";
        await LocalEnvironment.WaitUntilAsync(async () =>
            (deployed = await Client(node).DeployAsync("other", "other", repository, 1)) is ServiceDeployed, Deadline, $"a deploy to succeed once PostgreSQL is back (last reply: {deployed})");
        await WaitForHookAsync(node, "other/0", "start 1 end");
        await node.DisposeAsync();

        // And a controller started again recovers both services from the journal.
        await using var restarted = await EnsembleNode.StartAsync(Options("node"));
        Assert.IsType<UpgradeStatus>(await AskAsync(restarted, new GetUpgradeStatus("app")));
        var added = Assert.IsType<UnitsAdded>(await AskAsync(restarted, new AddUnits("other", 1)));
        await WaitForHookAsync(restarted, added.Units[0], "start 1 end");
        Assert.IsType<UnitsAdded>(await AskAsync(restarted, new AddUnits("app", 1)));
    }
}
