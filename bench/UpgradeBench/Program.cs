using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Ensemble.Formulas;
using Ensemble.Hooks;
using Ensemble.Services;
using Ensemble.TestKit;
using Ensemble.Topology;
using Ensemble.Units;
using Microsoft.Data.Sqlite;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

// The upgrade pipeline's cost, printed as a table and written to bench/results/latest.json (quick.json for --quick).
// Usage: dotnet run -c Release --project bench/UpgradeBench [-- --quick] [--max-ratio R]
//   --max-ratio R  exit 1 (after printing everything) when a 100-unit row's median ratio to the bare limit is above R:
//                  the guard .ci/run runs, so that a regression of the kind issue 17 found cannot land unnoticed.
//   --trace N all|P  one row of N units (one measured upgrade), as JSON, with the phases on stderr.
// Knobs for experiments, never set by CI: BENCH_CONFIG (HOCON over the environment's), BENCH_HOOK_SLOTS (the agent's
// max-parallel-hooks), BENCH_MEMORY_JOURNAL=1 (an in-memory SQLite journal), BENCH_PERF_CONTROL (perf's control FIFO),
// BENCH_REPETITIONS (measured upgrades of a --trace row; default 1).
var quick = args.Contains("--quick");
double? maxRatio = null;
if (Array.IndexOf(args, "--max-ratio") is var at and >= 0)
{
    if (at + 1 >= args.Length || !double.TryParse(args[at + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var r) || r <= 1)
    {
        Console.Error.WriteLine("--max-ratio needs a number above 1, such as --max-ratio 4");
        return 2;
    }
    maxRatio = r;
}
if (args.Length == 3 && args[0] == "--trace")
{
    // One run with the actors' log on stdout, to see where the time goes.
    Bench.Trace = true;
    Bench.Repetitions = int.TryParse(Environment.GetEnvironmentVariable("BENCH_REPETITIONS"), CultureInfo.InvariantCulture, out var reps) && reps > 0 ? reps : 1;
    var traced = await Bench.UpgradeAsync(Directory.CreateTempSubdirectory("ensemble-bench-trace-").FullName,
        int.Parse(args[1], CultureInfo.InvariantCulture), args[2] == "all" ? null : int.Parse(args[2], CultureInfo.InvariantCulture));
    Console.WriteLine(JsonSerializer.Serialize(traced));
    return 0;
}
var sizes = quick ? new[] { 10, 100 } : new[] { 10, 100, 1000 };
var idleSizes = quick ? new[] { 10, 1000 } : new[] { 10, 1000, 10000 };
var results = new List<Dictionary<string, object>>();
var root = Directory.CreateTempSubdirectory("ensemble-bench-").FullName;
Console.WriteLine($"ActorEnsemble upgrade benchmark — {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, scratch {root}");

try
{
    Console.WriteLine();
    Console.WriteLine("upgrade throughput (in-process environment, one machine, hooks stop/upgrade-formula/start as shell scripts)");
    Console.WriteLine($"(each row: the medians of {Bench.Repetitions} measured upgrades and of {Bench.Repetitions} bare runs made just before them, in the same process)");
    Console.WriteLine($"{"units",6} {"parallel",9} {"wall s",8} {"ms/unit",8} {"bare s",8} {"ratio",6} {"writes/unit",12} {"downloads",10} {"journal/unit",13}");
    foreach (var n in sizes)
    {
        foreach (var parallel in new int?[] { null, 10 })
        {
            var row = await Bench.UpgradeAsync(root, n, parallel);
            results.Add(row);
            Console.WriteLine($"{n,6} {(parallel?.ToString(CultureInfo.InvariantCulture) ?? "all"),9} {row["wallSeconds"],8:0.00} {row["msPerUnit"],8:0.0} {row["bareSeconds"],8:0.00} {row["ratio"],6:0.00} {row["storeWritesPerUnit"],12:0.00} {row["bundleDownloadsPerNode"],10} {row["journalEventsPerUnit"],13:0.00}");
        }
    }

    Console.WriteLine();
    Console.WriteLine("as a user types it (real ensemble CLI processes against a bootstrapped local environment)");
    var cli = await Bench.CliAsync(root);
    results.Add(cli);
    Console.WriteLine($"  formula author's loop, 3 units (edit hook; upgrade-formula --repository DIR --wait): {cli["authorLoopSeconds"]:0.00} s (median of 3)");
    Console.WriteLine($"  ensemble status:                                                                 {cli["statusSeconds"]:0.00} s (median of 5)");
    var fleet = await Bench.FleetAsync(root, 200);
    results.Add(fleet);
    Console.WriteLine($"  200 units, upgrade-formula --repository DIR --wait: {fleet["cliSeconds"]:0.00} s; the same unpacks and hooks by xargs -P 2: {fleet["shellLoopSeconds"]:0.00} s; ratio {fleet["ratio"]:0.00} (medians of {Bench.Repetitions})");

    Console.WriteLine();
    Console.WriteLine("agent memory with idle units (real Ensemble.Agent process, formula without hooks)");
    foreach (var n in idleSizes)
    {
        var row = await Bench.IdleMemoryAsync(root, n);
        results.Add(row);
        Console.WriteLine($"  {n,6} units: {row["rssMegabytes"],7:0.0} MB RSS");
    }
}
finally
{
    try { Directory.Delete(root, recursive: true); } catch (IOException) { }
}

var outDir = Path.Combine(Bench.RepositoryRoot, "bench", "results");
Directory.CreateDirectory(outDir);
var json = JsonSerializer.Serialize(new { machine = new { cores = Environment.ProcessorCount }, at = DateTime.UtcNow, quick, results },
    new JsonSerializerOptions { WriteIndented = true });
File.WriteAllText(Path.Combine(outDir, quick ? "quick.json" : "latest.json"), json);
Console.WriteLine($"\nwritten to bench/results/{(quick ? "quick.json" : "latest.json")}");
if (maxRatio is { } line)
{
    // The guard: the 100-unit rows, at both parallelisms; each ratio is of medians over Bench.Repetitions runs, and
    // the line is loose, because this shared machine's wall times swing by tens of percent.
    var over = results.Where(r => (string)r["kind"] == "upgrade" && (int)r["units"] == 100 && (double)r["ratio"] > line).ToList();
    foreach (var row in over)
        Console.Error.WriteLine($"bench guard: 100 units at max-parallel {row["maxParallel"]} cost {(double)row["ratio"]:0.00}x the bare limit, above the {line:0.##}x line; the upgrade pipeline has become slower (docs/performance.md says how to find where)");
    if (over.Count > 0) return 1;
    Console.WriteLine($"bench guard: every 100-unit row is within {line:0.##}x the bare limit");
}
return 0;

internal static class Bench
{
    public static bool Trace { get; set; }

    /// <summary>Measured upgrades (each paired with a bare run) per row; the row is their median.</summary>
    public static int Repetitions { get; set; } = 5;
    private static SqliteConnection? _keepAlive;

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorEnsemble.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("run the benchmark from inside the repository");
        }
    }

    /// <summary>A formula whose hooks do next to nothing: the cost measured is spawning them.</summary>
    private static void WriteFormula(string repository, string name, int revision, bool withHooks = true)
    {
        var dir = Path.Combine(repository, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(Path.Combine(dir, "hooks"));
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"), $"name: {name}\nrevision: {revision}\nsummary: benchmark formula\n");
        File.WriteAllText(Path.Combine(dir, "README"), string.Concat(Enumerable.Repeat("benchmark formula payload\n", 200)));
        if (!withHooks) return;
        foreach (var hook in new[] { "install", "start", "stop", "upgrade-formula" })
        {
            var path = Path.Combine(dir, "hooks", hook);
            File.WriteAllText(path, $"#!/bin/sh\necho {hook} $ENSEMBLE_UNIT_NAME {revision}\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public static async Task<Dictionary<string, object>> UpgradeAsync(string root, int units, int? maxParallel)
    {
        var directory = Path.Combine(root, $"upgrade-{units}-{maxParallel?.ToString(CultureInfo.InvariantCulture) ?? "all"}");
        var repository = Path.Combine(directory, "repository");
        Directory.CreateDirectory(repository);
        WriteFormula(repository, "bench", 1);
        // The benchmark's inbox hears every unit's progress (seven messages a unit): a thousand units overflow the default
        // 1000-message inbox, which drops what does not fit.
        var quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING\nakka.actor.inbox.inbox-size = 100000");
        if (Environment.GetEnvironmentVariable("BENCH_CONFIG") is { Length: > 0 } extra) quiet = ConfigurationFactory.ParseString(extra).WithFallback(quiet);
        if (Environment.GetEnvironmentVariable("BENCH_MEMORY_JOURNAL") == "1")
        {
            var mem = "Data Source=file:benchmem" + Guid.NewGuid().ToString("N") + "?mode=memory&cache=shared";
            _keepAlive = new SqliteConnection(mem);
            _keepAlive.Open();
            quiet = ConfigurationFactory.ParseString($"akka.persistence.journal.sql.connection-string = \"{mem}\"\nakka.persistence.snapshot-store.sql.connection-string = \"{mem}\"").WithFallback(quiet);
        }
        // The bare limit first, in a process with no environment running yet: nothing else competes for the cores
        // (an environment's background work — its agents' watches, the JIT promoting hot code — would slow the bare
        // loop too and flatter the ratio). Warmed up once, then as many runs as measured upgrades.
        var (bares, bareBusy) = await BareRunsAsync(directory, repository, units, maxParallel);
        await using var env = await LocalEnvironment.StartAsync(new LocalEnvironmentOptions
        {
            Directory = Path.Combine(directory, "env"), SystemConfig = quiet,
            Agent = Environment.GetEnvironmentVariable("BENCH_HOOK_SLOTS") is { Length: > 0 } slots ? AgentSettings.Default with { MaxParallel = int.Parse(slots, CultureInfo.InvariantCulture) } : AgentSettings.Default,
        });

        if (await env.DeployAsync("bench", "bench", repository, units) is not ServiceDeployed) throw new InvalidOperationException("deploy refused");
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await env.Topology.ListUnitsAsync("bench")).All(u => u.State == Ensemble.Units.UnitPhase.Running), TimeSpan.FromMinutes(20), "units to run");

        // A warm-up upgrade, not measured: a controller and its agents are long-running processes, and
        // what is measured is their steady state, not the JIT compiling the pipeline for the first time.
        WriteFormula(repository, "bench", 2);
        await UpgradeOnceAsync(env, units, maxParallel);

        // Repetitions of measured upgrades, each to the next revision; the row reports medians (this shared machine's
        // wall times vary by tens of percent from one run to the next).
        var walls = new List<double>();
        var busy = new List<double>();
        var cpuMs = new List<double>();
        double writesPerUnit = 0, journalPerUnit = 0;
        long downloadsDone = 0;
        for (var rep = 0; rep < Repetitions; rep++)
        {
            WriteFormula(repository, "bench", 3 + rep);
            var writes = env.Server.WriteCount;
            var downloads = env.Machine("m0").Cache.Downloads;
            var journal = _keepAlive is null ? JournalWrites(Path.Combine(directory, "env", "journal.db")) : 0;
            var cpuBefore = CpuTicks();
            var ownBefore = Process.GetCurrentProcess().TotalProcessorTime;
            PerfControl("enable");
            var elapsed = await UpgradeOnceAsync(env, units, maxParallel);
            PerfControl("disable");
            cpuMs.Add((Process.GetCurrentProcess().TotalProcessorTime - ownBefore).TotalMilliseconds / units);
            busy.Add(CpuBusyShare(cpuBefore, CpuTicks()));
            if (rep == 0)
            {
                writesPerUnit = (env.Server.WriteCount - writes) / (double)units;
                downloadsDone = env.Machine("m0").Cache.Downloads - downloads;
                journalPerUnit = _keepAlive is null ? (JournalWrites(Path.Combine(directory, "env", "journal.db")) - journal) / (double)units : -1;
            }
            walls.Add(elapsed.TotalSeconds);
        }
        return new Dictionary<string, object>
        {
            ["kind"] = "upgrade", ["units"] = units, ["maxParallel"] = maxParallel?.ToString(CultureInfo.InvariantCulture) ?? "all",
            ["wallSeconds"] = Median(walls), ["msPerUnit"] = Median(walls) * 1000 / units,
            ["bareSeconds"] = Median(bares), ["ratio"] = Median(walls) / Median(bares), ["wallRuns"] = walls, ["bareRuns"] = bares,
            ["cpuBusy"] = Median(busy), ["bareCpuBusy"] = Median(bareBusy), ["orchestrationCpuMsPerUnit"] = Median(cpuMs),
            ["storeWritesPerUnit"] = writesPerUnit, ["bundleDownloadsPerNode"] = downloadsDone, ["journalEventsPerUnit"] = journalPerUnit,
        };
    }

    private static async Task<(List<double> Seconds, List<double> Busy)> BareRunsAsync(string directory, string repository, int units, int? maxParallel)
    {
        using var bundle = FormulaPacker.Pack(FormulaLoader.Load(Path.Combine(repository, "bench")));
        await BareLimitAsync(Path.Combine(directory, "bare-warm-up"), bundle, units, maxParallel);
        var seconds = new List<double>();
        var busy = new List<double>();
        for (var rep = 0; rep < Repetitions; rep++)
        {
            var cpuBefore = CpuTicks();
            seconds.Add((await BareLimitAsync(Path.Combine(directory, $"bare-{rep}"), bundle, units, maxParallel)).TotalSeconds);
            busy.Add(CpuBusyShare(cpuBefore, CpuTicks()));
        }
        return (seconds, busy);
    }

    /// <summary>One upgrade of the service to the repository's current revision, timed from request to UpgradeFinished.</summary>
    private static async Task<TimeSpan> UpgradeOnceAsync(LocalEnvironment env, int units, int? maxParallel)
    {
        var inbox = Inbox.Create(env.System);
        env.Services.Tell(new WatchUpgrade("bench"), inbox.Receiver);
        var clock = Stopwatch.StartNew();
        var started = await env.UpgradeAsync("bench", maxParallel: maxParallel);
        if (started is not UpgradeStarted) throw new InvalidOperationException($"upgrade refused: {started}");
        var startedAt = clock.Elapsed;
        TimeSpan? firstProgress = null, lastUpgraded = null;
        UpgradeFinished finished;
        while (true)
        {
            var message = await inbox.ReceiveAsync(TimeSpan.FromMinutes(30));
            if (message is UnitUpgradeProgressed p)
            {
                firstProgress ??= clock.Elapsed;
                if (p.State == "upgraded") lastUpgraded = clock.Elapsed;
            }
            if (message is UpgradeFinished f) { finished = f; break; }
        }
        clock.Stop();
        if (Trace)
            Console.Error.WriteLine($"phases: started {startedAt.TotalMilliseconds:0} ms, first progress {firstProgress?.TotalMilliseconds:0} ms, last upgraded {lastUpgraded?.TotalMilliseconds:0} ms, finished {clock.Elapsed.TotalMilliseconds:0} ms");
        env.System.Stop(inbox.Receiver);
        if (finished.Succeeded.Count != units) throw new InvalidOperationException($"only {finished.Succeeded.Count} of {units} units upgraded");
        // The coordinator ends the run just after its last report; wait for that before the next request.
        await LocalEnvironment.WaitUntilAsync(async () =>
            !(await env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("bench"))).Running, TimeSpan.FromMinutes(1), "the run to end");
        return clock.Elapsed;
    }

    /// <summary>
    /// The bare limit: for every unit, unpack the same bundle into a fresh directory and run the same three
    /// hooks with the same runner, at the same parallelism — no actors, no store, no journal, no state files.
    /// </summary>
    private static async Task<TimeSpan> BareLimitAsync(string directory, FormulaBundle bundle, int units, int? maxParallel)
    {
        Directory.CreateDirectory(directory);
        var runner = new ProcessHookRunner(ProcessHookRunner.DefaultTimeout);
        using var gate = new SemaphoreSlim(maxParallel ?? units);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, units).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                var unitDir = Path.Combine(directory, $"u{i}");
                var formula = Path.Combine(unitDir, "formula");
                var data = Path.Combine(unitDir, "data");
                Directory.CreateDirectory(data);
                var context = new HookContext($"bare/{i}", "bare", formula, data, 2, Path.Combine(unitDir, "unit.log"), 1);
                await Task.Run(() => BundleExtractor.Extract(bundle.Path, bundle.Sha256, formula));
                foreach (var hook in new[] { "stop", "upgrade-formula", "start" })
                {
                    var result = await runner.RunAsync(hook, context, CancellationToken.None);
                    if (!result.Succeeded) throw new InvalidOperationException(result.Describe());
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        return clock.Elapsed;
    }

    /// <summary>With BENCH_PERF_CONTROL set to perf's control FIFO, profile only the measured upgrade.</summary>
    private static void PerfControl(string command)
    {
        if (Environment.GetEnvironmentVariable("BENCH_PERF_CONTROL") is { Length: > 0 } fifo) File.AppendAllText(fifo, command + "\n");
    }

    /// <summary>Machine-wide (busy, total) CPU ticks from /proc/stat.</summary>
    private static (long Busy, long Total) CpuTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = fields[3] + fields[4];
        return (fields.Sum() - idle, fields.Sum());
    }

    /// <summary>How busy all cores were between two readings, 0..1.</summary>
    private static double CpuBusyShare((long Busy, long Total) before, (long Busy, long Total) after) =>
        after.Total == before.Total ? 0 : (after.Busy - before.Busy) / (double)(after.Total - before.Total);

    /// <summary>
    /// Events ever written to the journal: the highest ordering number, which deletions (journal hygiene) never lower —
    /// a count of rows would go down when the coordinator compacts its journal mid-run.
    /// </summary>
    private static long JournalWrites(string journalPath)
    {
        using var connection = new SqliteConnection($"Data Source={journalPath};Mode=ReadOnly");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(ordering), 0) FROM journal";
        return (long)command.ExecuteScalar()!;
    }

    // ---- the CLI as a user runs it ----

    private static string Cli => Path.Combine(AppContext.BaseDirectory, "ensemble.dll");

    private static async Task<(TimeSpan Elapsed, string Output)> EnsembleAsync(string home, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Cli);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["ENSEMBLE_HOME"] = home;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        clock.Stop();
        if (process.ExitCode != 0) throw new InvalidOperationException($"ensemble {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        return (clock.Elapsed, await stdout);
    }

    public static async Task<Dictionary<string, object>> CliAsync(string root)
    {
        var home = Path.Combine(root, "cli-home");
        var repository = Path.Combine(root, "cli-repository");
        WriteFormula(repository, "loop", 1);
        await EnsembleAsync(home, "bootstrap", "--local", "--name", "bench");
        try
        {
            await EnsembleAsync(home, "deploy", "--repository", repository, "-n", "3", "--wait", "loop");
            var loops = new List<double>();
            for (var i = 0; i < 3; i++)
            {
                File.AppendAllText(Path.Combine(repository, "loop", "hooks", "upgrade-formula"), $"echo edit {i}\n");
                loops.Add((await EnsembleAsync(home, "upgrade-formula", "--repository", repository, "--wait", "loop")).Elapsed.TotalSeconds);
            }
            var statuses = new List<double>();
            for (var i = 0; i < 5; i++) statuses.Add((await EnsembleAsync(home, "status")).Elapsed.TotalSeconds);
            return new Dictionary<string, object>
            {
                ["kind"] = "cli", ["authorLoopSeconds"] = Median(loops), ["statusSeconds"] = Median(statuses),
                ["authorLoopRuns"] = loops, ["statusRuns"] = statuses,
            };
        }
        finally
        {
            await EnsembleAsync(home, "destroy-environment", "bench");
        }
    }

    /// <summary>
    /// A fleet upgraded as an operator does it: a real node (`bootstrap --local`), <paramref name="units"/> units, and
    /// `ensemble upgrade-formula --repository DIR --wait` timed as a whole command, CLI start included. Beside it the
    /// shell loop an operator could write instead: for each unit, check the same bundle's sha256, unpack it into a fresh
    /// directory and run the same three hooks, two units at a time (`xargs -P 2`, one per core). Medians of
    /// <see cref="Repetitions"/> upgrades (after one warm-up) and of as many loops (after one warm-up).
    /// </summary>
    public static async Task<Dictionary<string, object>> FleetAsync(string root, int units)
    {
        var home = Path.Combine(root, "fleet-home");
        var repository = Path.Combine(root, "fleet-repository");
        WriteFormula(repository, "fleet", 1);

        // The shell loop first, before any node runs.
        var loopDirectory = Path.Combine(root, "fleet-loop");
        Directory.CreateDirectory(loopDirectory);
        var bundlePath = Path.Combine(loopDirectory, "fleet.tar.gz");
        string sha256;
        using (var bundle = FormulaPacker.Pack(FormulaLoader.Load(Path.Combine(repository, "fleet"))))
        {
            File.Copy(bundle.Path, bundlePath);
            sha256 = bundle.Sha256;
        }
        var script = Path.Combine(loopDirectory, "unit.sh");
        File.WriteAllText(script, """
            #!/bin/sh
            # One unit: check the bundle's sha256 and unpack it into a fresh formula directory (as the bare loop and
            # the agents do), then stop, upgrade-formula, start.
            set -e
            d="$1/u$2"; mkdir -p "$d/formula" "$d/data"
            echo "$4  $3" | sha256sum -c --quiet
            tar -xzf "$3" -C "$d/formula"
            cd "$d/formula"
            for hook in stop upgrade-formula start; do
              ENSEMBLE_UNIT_NAME="fleet/$2" ENSEMBLE_UNIT_DATA_DIR="$d/data" "./hooks/$hook" >> "$d/unit.log" 2>&1
            done
            """);
        var loops = new List<double>();
        for (var rep = 0; rep <= Repetitions; rep++)
        {
            var into = Path.Combine(loopDirectory, $"run-{rep}");
            Directory.CreateDirectory(into);
            // xargs -I replaces its marker in every argument, the paths included: hence one no path holds.
            var loop = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            loop.ArgumentList.Add("-c");
            loop.ArgumentList.Add($"seq 0 {units - 1} | xargs -P 2 -I @unit@ sh \"$0\" \"$1\" @unit@ \"$2\" \"$3\"");
            loop.ArgumentList.Add(script);
            loop.ArgumentList.Add(into);
            loop.ArgumentList.Add(bundlePath);
            loop.ArgumentList.Add(sha256);
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(loop)!;
            await process.WaitForExitAsync();
            if (process.ExitCode != 0) throw new InvalidOperationException($"the shell loop exited {process.ExitCode}");
            if (rep > 0) loops.Add(clock.Elapsed.TotalSeconds);
        }

        await EnsembleAsync(home, "bootstrap", "--local", "--name", "fleet");
        try
        {
            await EnsembleAsync(home, "deploy", "--repository", repository, "-n", units.ToString(CultureInfo.InvariantCulture), "--wait", "fleet");
            var upgrades = new List<double>();
            for (var rep = 0; rep <= Repetitions; rep++)
            {
                WriteFormula(repository, "fleet", 2 + rep);
                var elapsed = (await EnsembleAsync(home, "upgrade-formula", "--repository", repository, "--wait", "fleet")).Elapsed.TotalSeconds;
                if (rep > 0) upgrades.Add(elapsed);
            }
            var (_, status) = await EnsembleAsync(home, "status", "fleet", "--format", "json");
            var upgraded = System.Text.RegularExpressions.Regex.Matches(status, $"local:fleet-{1 + Repetitions + 1}").Count;
            if (upgraded < units) throw new InvalidOperationException($"only {upgraded} of {units} units show the last revision");
            return new Dictionary<string, object>
            {
                ["kind"] = "fleet", ["units"] = units, ["cliSeconds"] = Median(upgrades), ["shellLoopSeconds"] = Median(loops),
                ["ratio"] = Median(upgrades) / Median(loops), ["cliRuns"] = upgrades, ["shellLoopRuns"] = loops,
            };
        }
        finally
        {
            await EnsembleAsync(home, "destroy-environment", "fleet");
        }
    }

    /// <summary>Waits (at most 20 minutes) until `ensemble status` shows <paramref name="units"/> units of the service running.</summary>
    private static async Task WaitUntilRunningAsync(string home, string service, int units)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var (_, status) = await EnsembleAsync(home, "status", service, "--format", "json");
            using var document = JsonDocument.Parse(status);
            var running = 0;
            foreach (var unit in Descendants(document.RootElement).Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("state", out _)))
                if (unit.GetProperty("state").ValueKind == JsonValueKind.String && unit.GetProperty("state").GetString() == "running") running++;
            if (running >= units) return;
            if (deadline.Elapsed > TimeSpan.FromMinutes(20)) throw new TimeoutException($"only {running} of {units} units of {service} run after 20 minutes");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private static IEnumerable<JsonElement> Descendants(JsonElement element)
    {
        yield return element;
        var children = element.ValueKind switch
        {
            JsonValueKind.Object => element.EnumerateObject().Select(p => p.Value),
            JsonValueKind.Array => element.EnumerateArray(),
            _ => [],
        };
        foreach (var child in children)
            foreach (var descendant in Descendants(child))
                yield return descendant;
    }

    public static async Task<Dictionary<string, object>> IdleMemoryAsync(string root, int units)
    {
        var home = Path.Combine(root, $"idle-home-{units}");
        var repository = Path.Combine(root, $"idle-repository-{units}");
        WriteFormula(repository, "idle", 1, withHooks: false);
        await EnsembleAsync(home, "bootstrap", "--local", "--name", "idle");
        try
        {
            // One request may ask for at most 1000 units (ensemble.limits.units-per-request) and a service may have at
            // most 5000 (units-per-service): more units are more services of the same formula, filled in steps.
            const int PerRequest = 1000, PerService = 5000;
            for (var (first, service) = (0, 0); first < units; first += PerService, service++)
            {
                var name = service == 0 ? "idle" : $"idle{service + 1}";
                var size = Math.Min(units - first, PerService);
                await EnsembleAsync(home, "deploy", "--repository", repository, "-n", Math.Min(size, PerRequest).ToString(CultureInfo.InvariantCulture), "--wait", "idle", name);
                for (var placed = PerRequest; placed < size; placed += PerRequest)
                    await EnsembleAsync(home, "add-unit", "-n", Math.Min(size - placed, PerRequest).ToString(CultureInfo.InvariantCulture), name);
                await WaitUntilRunningAsync(home, name, size);
            }
            using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(home, "environments", "idle", "environment.json")));
            var pid = record.RootElement.GetProperty("pid").GetInt32();
            // Let the runtime settle after the deploy burst, then read the resident set the kernel reports.
            GC.Collect();
            await Task.Delay(TimeSpan.FromSeconds(3));
            var rss = File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            var kb = long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            return new Dictionary<string, object> { ["kind"] = "idle-memory", ["units"] = units, ["rssMegabytes"] = kb / 1024.0 };
        }
        finally
        {
            await EnsembleAsync(home, "destroy-environment", "idle");
        }
    }

    public static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
