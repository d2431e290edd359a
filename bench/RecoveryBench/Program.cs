using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Ensemble.Coordination;
using Ensemble.Formulas;
using Ensemble.Hosting;
using Ensemble.Services;
using Ensemble.Topology;
using Microsoft.Data.Sqlite;
using static Ensemble.Services.ServiceEvents;

// A service coordinator's recovery time against the length of its history, with journal hygiene (snapshots,
// deletions) on and off, on SQLite. Prints a table and writes bench/results/recovery.json.
// Usage: dotnet run -c Release --project bench/RecoveryBench [-- --quick]
var quick = args.Contains("--quick");
int[] histories = quick ? [100, 1_000] : [100, 1_000, 10_000];
const int UnitsPerRun = 100;
const int Starts = 7;
var root = Directory.CreateTempSubdirectory("ensemble-recovery-bench-").FullName;
var results = new List<Dictionary<string, object>>();
Console.WriteLine($"ActorEnsemble coordinator recovery benchmark — {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, scratch {root}");
Console.WriteLine($"one service of {UnitsPerRun} units; history = past unit upgrades ({UnitsPerRun} per run); {Starts} starts each, the first not counted");
Console.WriteLine($"{"history",8} {"hygiene",8} {"events",7} {"live",6} {"snapshot",9} {"journal MB",11} {"write s",8} {"median ms",10} {"min ms",7} {"max ms",7} {"ready ms",9}");
try
{
    foreach (var history in histories)
    foreach (var hygiene in new[] { false, true })
    {
        var row = await RecoveryBench.MeasureAsync(Path.Combine(root, $"{history}-{(hygiene ? "on" : "off")}"), history / UnitsPerRun, UnitsPerRun, hygiene, Starts);
        results.Add(row);
        Console.WriteLine($"{history,8} {(hygiene ? "on" : "off"),8} {row["eventsWritten"],7} {row["liveEvents"],6} {row["snapshotAt"],9} {row["journalMegabytes"],11:0.0} {row["writeSeconds"],8:0.0} {row["medianMs"],10:0.0} {row["minMs"],7:0.0} {row["maxMs"],7:0.0} {row["readyMedianMs"],9:0.0}");
    }
}
finally
{
    try { Directory.Delete(root, recursive: true); } catch (IOException) { }
}
var outDir = Path.Combine(RecoveryBench.RepositoryRoot, "bench", "results");
Directory.CreateDirectory(outDir);
File.WriteAllText(Path.Combine(outDir, quick ? "recovery-quick.json" : "recovery.json"),
    JsonSerializer.Serialize(new { machine = new { cores = Environment.ProcessorCount }, at = DateTime.UtcNow, quick, results }, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"\nwritten to bench/results/{(quick ? "recovery-quick.json" : "recovery.json")}");

internal static class RecoveryBench
{
    private const string Service = "bench";

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorEnsemble.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("run the benchmark from inside the repository");
        }
    }

    private static FormulaRef Revision(int revision) => new(new FormulaId(Service, revision), Convert.ToHexStringLower(BitConverter.GetBytes((long)revision)).PadLeft(64, '0'));

    /// <summary>
    /// Writes <paramref name="runs"/> finished upgrade runs of <paramref name="units"/> units each (the coordinator's
    /// events, as the real actor writes them; sagas journal nothing), then times starts of a
    /// ServiceActor until it answers its first request.
    /// </summary>
    public static async Task<Dictionary<string, object>> MeasureAsync(string directory, int runs, int units, bool hygiene, int starts)
    {
        Directory.CreateDirectory(directory);
        var journalPath = Path.Combine(directory, "journal.db");
        var config = EnsembleConfig.ForSqliteJournal(journalPath, ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING"));
        using var server = EmbeddedCoordinationServer.Open(Path.Combine(directory, "store"));
        await using var session = server.Connect();
        var topology = new TopologyStore(session, TopologyStore.DefaultRoot);
        await topology.EnsureLayoutAsync();
        var system = ActorSystem.Create("recovery-bench", config);
        try
        {
            // The store as the coordinator's writes left it (reconciliation at recovery reads it and finds it agrees).
            var last = Revision(runs + 1);
            var unitNames = Enumerable.Range(0, units).Select(n => UnitNames.Of(Service, n)).ToList();
            await topology.CreateServiceAsync(new ServiceRecord(Service, last.Id.ToString(), last.Sha256, "/bench/repository"));
            await topology.AddUnitsAsync(unitNames.Select(u => new UnitRecord(u, last.Id.ToString(), Ensemble.Units.UnitPhase.Running, "m0", Sha256: last.Sha256)).ToList());

            var writer = new JournalWriter(system);
            var watch = Stopwatch.StartNew();
            var events = new List<IServiceEvent> { new ServiceCreated(Revision(1), "/bench/repository") };
            events.AddRange(unitNames.Select(u => new UnitPlaced(u, "m0")));
            for (var run = 0; run < runs; run++)
            {
                var runId = $"run{run:D8}";
                events.Add(new UpgradeBegan(runId, Revision(run + 1), Revision(run + 2), "/bench/repository", unitNames, int.MaxValue));
                events.AddRange(unitNames.Select(u => new UnitUpgradeLaunched(runId, u)));
                events.AddRange(unitNames.Select(u => new UnitUpgradeSucceeded(runId, u)));
                events.Add(new UpgradeEnded(runId));
            }
            await writer.WriteAsync(ServiceActor.PersistenceIdFor(Service), events.Cast<object>().ToList());
            var writeSeconds = watch.Elapsed.TotalSeconds;

            var settings = ControllerSettings.Default with { SnapshotEvery = hygiene ? JournalHygiene.DefaultSnapshotEvery : 0 };
            var context = new ControllerContext(topology, new FileFormulaStorage(Path.Combine(directory, "formula-storage")), settings);
            if (hygiene)
            {
                // The coordinator's first start with hygiene on snapshots its recovered state and deletes what it replaces.
                await StartAsync(system, context, last.Id, until: () => WaitUntilAsync(() =>
                    Count(journalPath, $"SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'service-{Service}'") == 1 && LiveEvents(journalPath) == 0,
                    TimeSpan.FromMinutes(5)));
            }

            var times = new List<double>();
            var ready = new List<double>();
            for (var i = 0; i < starts; i++)
            {
                var (status, readyAt) = await StartAsync(system, context, last.Id);
                times.Add(status.TotalMilliseconds);
                ready.Add(readyAt.TotalMilliseconds);
            }
            times.RemoveAt(0);
            ready.RemoveAt(0);
            times.Sort();
            ready.Sort();
            return new Dictionary<string, object>
            {
                ["unitUpgrades"] = runs * units, ["runs"] = runs, ["units"] = units, ["hygiene"] = hygiene,
                ["eventsWritten"] = events.Count, ["liveEvents"] = LiveEvents(journalPath),
                ["snapshotAt"] = Count(journalPath, $"SELECT COALESCE(MAX(sequence_number), 0) FROM snapshot WHERE persistence_id = 'service-{Service}'"),
                ["journalMegabytes"] = (new FileInfo(journalPath).Length + (File.Exists(journalPath + "-wal") ? new FileInfo(journalPath + "-wal").Length : 0)) / 1048576.0,
                ["writeSeconds"] = writeSeconds,
                ["medianMs"] = times[times.Count / 2], ["minMs"] = times[0], ["maxMs"] = times[^1], ["startsMs"] = times,
                ["readyMedianMs"] = ready[ready.Count / 2], ["readyStartsMs"] = ready,
            };
        }
        finally
        {
            await system.Terminate();
            SqliteConnection.ClearAllPools();
        }
    }

    /// <summary>
    /// Starts the coordinator and times it until it answers its first request (a status, answered as soon as it has
    /// recovered) and until it takes requests that change something (a PrepareUpgrade, which waits for the
    /// reconciliation with the store that follows recovery); then stops it.
    /// </summary>
    private static async Task<(TimeSpan Status, TimeSpan Ready)> StartAsync(ActorSystem system, ControllerContext context, FormulaId expected, Func<Task>? until = null)
    {
        var watch = Stopwatch.StartNew();
        var coordinator = system.ActorOf(ServiceActor.Props(Service, context));
        var statusAsked = coordinator.Ask<ServiceReplies.UpgradeStatus>(new ServiceRequests.GetUpgradeStatus(Service), TimeSpan.FromMinutes(5));
        var readyAsked = coordinator.Ask<object>(new ServiceRequests.PrepareUpgrade(Service), TimeSpan.FromMinutes(5));
        var status = await statusAsked;
        var statusElapsed = watch.Elapsed;
        var prepared = await readyAsked;
        var readyElapsed = watch.Elapsed;
        if (status.Target != expected || status.Running || prepared is not ServiceReplies.UpgradePrepared { Deployed.Id: var deployed } || deployed != expected)
            throw new InvalidOperationException($"the coordinator recovered a wrong state: {status}, {prepared}");
        if (until is not null) await until();
        await coordinator.GracefulStop(TimeSpan.FromMinutes(1));
        return (statusElapsed, readyElapsed);
    }

    private static long LiveEvents(string journalPath) =>
        Count(journalPath, $"SELECT COUNT(*) FROM journal WHERE persistence_id = 'service-{Service}' AND deleted = 0");

    private static long Count(string journalPath, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={journalPath};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("the snapshot and deletions did not happen");
            await Task.Delay(50);
        }
    }
}

/// <summary>
/// Writes events straight to the journal (through its plugin and our serializer, as a persistent actor's writes go),
/// without running actors: ten thousand real unit upgrades would take the benchmark minutes per history size.
/// </summary>
internal sealed class JournalWriter(ActorSystem system)
{
    private readonly IActorRef _journal = Persistence.Instance.Apply(system).JournalFor(null);
    private readonly string _writer = Guid.NewGuid().ToString();

    /// <summary>The events of one persistent actor, numbered from 1, written in batches as PersistAll writes them.</summary>
    public async Task WriteAsync(string persistenceId, IReadOnlyList<object> events)
    {
        var sequenceNr = 0L;
        foreach (var chunk in events.Chunk(1000))
            await WriteAtomicsAsync(chunk.Select(e => Atomic(persistenceId, ++sequenceNr, e)).ToList());
    }

    private AtomicWrite Atomic(string persistenceId, long sequenceNr, object e) =>
        new(ImmutableList.Create<IPersistentRepresentation>(new Persistent(e, sequenceNr, persistenceId, "", false, ActorRefs.NoSender, _writer)));

    private async Task WriteAtomicsAsync(IReadOnlyList<AtomicWrite> writes)
    {
        var done = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiver = system.ActorOf(Props.Create(() => new Replies(done)));
        _journal.Tell(new WriteMessages(writes, receiver, 1));
        var outcome = await done.Task.WaitAsync(TimeSpan.FromMinutes(5));
        system.Stop(receiver);
        if (outcome is WriteMessagesFailed failed) throw new InvalidOperationException("journal write failed", failed.Cause);
    }

    private sealed class Replies : ReceiveActor
    {
        public Replies(TaskCompletionSource<object> done)
        {
            Receive<WriteMessagesSuccessful>(m => done.TrySetResult(m));
            Receive<WriteMessagesFailed>(m => done.TrySetResult(m));
            ReceiveAny(_ => { });
        }
    }
}
