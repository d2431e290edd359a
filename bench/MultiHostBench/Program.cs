using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.TestKit.MultiHost;

// One upgrade of a service spread over 3 agent hosts (100 units each), and the same upgrade of the same number of
// units on one agent host, in the same run, on simulated hosts (network namespaces; needs root and iproute2).
// Usage: MultiHostBench [--hosts H] [--units-per-host U] [--single-first]      (default 3 × 100, the spread upgrade first)
var hosts = Option("--hosts", 3);
var perHost = Option("--units-per-host", 100);
var total = hosts * perHost;
var singleFirst = args.Contains("--single-first");
Console.WriteLine($"ActorEnsemble multi-host upgrade benchmark — {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, " +
                  $"{hosts} agent hosts × {perHost} units vs {total} units on one agent host");

var tool = EnsembleTool.Create();
var network = await SimulatedNetwork.CreateAsync();
try
{
    var bench = new Bench(network, tool);
    var agents = Enumerable.Range(1, hosts).Select(i => $"a{i}").ToArray();
    await bench.StartAsync(agents, "solo");

    // Warm-up, unmeasured: one unit on every agent host deployed and upgraded once, so neither measured upgrade
    // pays for the controller's first pass through the JIT.
    await bench.DeployAsync("warmup", [.. agents, "solo"], 1);
    await bench.UpgradeAsync("warmup", [.. agents, "solo"]);

    Console.WriteLine($"deploying {total} units of 'spread' on {string.Join(", ", agents)} and {total} units of 'single' on solo …");
    await bench.DeployAsync("spread", agents, perHost);
    await bench.DeployAsync("single", ["solo"], total);

    // --single-first measures the one-host upgrade first, to see what the order costs.
    Measured spread, single;
    if (singleFirst)
    {
        single = await bench.UpgradeAsync("single", ["solo"]);
        spread = await bench.UpgradeAsync("spread", agents);
    }
    else
    {
        spread = await bench.UpgradeAsync("spread", agents);
        single = await bench.UpgradeAsync("single", ["solo"]);
    }
    Report(spread, single);
}
finally
{
    await network.DisposeAsync();
    tool.Dispose();
}

void Report(Measured spread, Measured single)
{
    Console.WriteLine();
    Console.WriteLine("| run | units | wall s | with CLI start s | controller CPU s | controller CPU ms/unit | agent CPU ms/unit | bundle bytes received per host (downloads) |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|");
    foreach (var m in new[] { spread, single })
    {
        var received = string.Join(", ", m.Received.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Key}: {r.Value.Bytes:N0} ({r.Value.Downloads})")));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {m.Hosts.Count} host{(m.Hosts.Count > 1 ? "s" : "")} × {m.Units / m.Hosts.Count} | {m.Units} | {m.Wall.TotalSeconds:0.00} | {m.CliWall.TotalSeconds:0.00} | {m.ControllerCpu:0.00} | {1000 * m.ControllerCpu / m.Units:0.00} | {1000 * m.AgentCpu / m.Units:0.00} | {received} |"));
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"ratio {spread.Hosts.Count} hosts / 1 host: wall {spread.Wall / single.Wall:0.00}, controller CPU per unit upgrade {spread.ControllerCpu / single.ControllerCpu:0.00}"));

    var json = JsonSerializer.Serialize(new
    {
        machine = new { cores = Environment.ProcessorCount },
        at = DateTime.UtcNow,
        hosts,
        unitsPerHost = perHost,
        singleFirst,
        runs = new[] { spread, single }.Select(m => new
        {
            hosts = m.Hosts, units = m.Units, wallSeconds = m.Wall.TotalSeconds, cliSeconds = m.CliWall.TotalSeconds,
            controllerCpuSeconds = m.ControllerCpu, controllerCpuSecondsPerUnit = m.ControllerCpu / m.Units,
            agentCpuSeconds = m.AgentCpu, bundleBytes = m.BundleBytes,
            received = m.Received.ToDictionary(r => r.Key, r => new { bytes = r.Value.Bytes, downloads = r.Value.Downloads }),
        }),
        ratio = new { wall = spread.Wall / single.Wall, controllerCpuPerUnit = spread.ControllerCpu / single.ControllerCpu },
    }, new JsonSerializerOptions { WriteIndented = true });
    var path = Path.Combine(RepositoryRoot(), "bench", "results", hosts == 3 && perHost == 100 && !singleFirst ? "multihost.json" : $"multihost-{hosts}x{perHost}{(singleFirst ? "-single-first" : "")}.json");
    File.WriteAllText(path, json + "\n");
    Console.WriteLine($"written to {path}");
}

int Option(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    if (i < 0) return fallback;
    if (i + 1 >= args.Length || !int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var value) || value < 1)
        throw new ArgumentException($"{name} takes a positive whole number");
    return value;
}

static string RepositoryRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorEnsemble.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run the benchmark from inside the repository");
}

/// <summary>What one measured upgrade cost.</summary>
/// <param name="Wall">from the upgrade request to the last unit running the new revision (the CLI's --wait, less its own start).</param>
/// <param name="CliWall">the whole `ensemble upgrade-formula --wait` process, CLI start included.</param>
/// <param name="Received">per agent host: bytes of the new revision's bundle it fetched, and how many times.</param>
internal sealed record Measured(IReadOnlyList<string> Hosts, int Units, TimeSpan Wall, TimeSpan CliWall, double ControllerCpu, double AgentCpu,
    long BundleBytes, IReadOnlyDictionary<string, (long Bytes, int Downloads)> Received);

/// <summary>
/// The environment as the multi-host tests build it (Ensemble.Tests/MultiHost/MultiHostEnvironment.cs): ZooKeeper on
/// "zk", a controller node on "controller", the ensemble command on "operator" connected with the controller's
/// connection file, and agent nodes started on their own hosts with the line `ensemble add-machine` printed.
/// </summary>
internal sealed class Bench(SimulatedNetwork network, EnsembleTool tool)
{
    private const int ControllerPort = 4711;
    private static readonly TimeSpan NodeStart = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(30);
    private static readonly long ClockTicks = long.Parse(Run("getconf", "CLK_TCK"), CultureInfo.InvariantCulture);

    private readonly Dictionary<string, HostProcess> _agents = [];
    private readonly Dictionary<string, int> _revisions = [];
    private HostProcess _controller = null!;

    private SimulatedHost Operator => network["operator"];
    private string Repository => Path.Combine(Operator.DataRoot, "formulas");

    public async Task StartAsync(string[] agents, params string[] more)
    {
        await network.AddHostsAsync(["zk", "controller", "operator", .. agents, .. more]);
        var zooKeeper = await network["zk"].StartZooKeeperAsync();
        var controller = network["controller"];
        var data = Path.Combine(controller.DataRoot, "node");
        _controller = controller.Start(tool.Command,
            ["node", "--roles", "controller", "--environment", "prod", "--host", controller.Address,
             "--port", ControllerPort.ToString(CultureInfo.InvariantCulture), "--data-dir", data, "--zookeeper", zooKeeper.ConnectionString],
            name: "controller");
        await _controller.WaitForOutputAsync(" is up", NodeStart);

        var connection = await controller.RunAsync("cat", [Path.Combine(data, "connection.json")]);
        Check(connection, "reading the connection file");
        var file = Path.Combine(Operator.DataRoot, "prod-connection.json");
        await File.WriteAllTextAsync(file, connection.Stdout);
        Check(await EnsembleAsync(TimeSpan.FromMinutes(2), "connect", "prod", file), "ensemble connect");

        foreach (var name in agents.Concat(more))
        {
            var host = network[name];
            var added = await EnsembleAsync(TimeSpan.FromMinutes(2), "add-machine", name, "--data-dir", Path.Combine(host.DataRoot, "node"));
            Check(added, $"ensemble add-machine {name}");
            var line = added.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(l => !l.StartsWith('#'));
            _agents[name] = host.Start("/bin/sh", ["-c", "exec " + line], new Dictionary<string, string?> { ["PATH"] = tool.Directory + ":" + Environment.GetEnvironmentVariable("PATH") }, name: "agent");
        }
        foreach (var agent in _agents.Values) await agent.WaitForOutputAsync("is up", NodeStart);
        await UntilAsync(async () =>
        {
            var status = await StatusAsync();
            return _agents.Keys.All(m => status.GetProperty("machines").TryGetProperty(m, out var s) && s.GetProperty("state").GetString() == "started");
        }, TimeSpan.FromMinutes(2), "every agent host started");
        var cmdline = File.ReadAllText($"/proc/{_controller.Pid}/cmdline");
        if (!cmdline.Contains("Ensemble.Agent", StringComparison.Ordinal))
            throw new InvalidOperationException($"pid {_controller.Pid} is not the controller node: {cmdline.Replace('\0', ' ')}");
        Console.WriteLine($"environment up: ZooKeeper, controller (pid {_controller.Pid}), agent hosts {string.Join(", ", _agents.Keys)}");
    }

    /// <summary>Revision 1 of formula <paramref name="service"/>, <paramref name="perHost"/> units on each of <paramref name="hosts"/>, all running.</summary>
    public async Task DeployAsync(string service, IReadOnlyList<string> hosts, int perHost)
    {
        WriteFormula(service, _revisions[service] = 1);
        Check(await EnsembleAsync(Long, "deploy", "--repository", Repository, "-n", perHost.ToString(CultureInfo.InvariantCulture), "--to", hosts[0], service), $"deploy {service}");
        foreach (var host in hosts.Skip(1))
            Check(await EnsembleAsync(Long, "add-unit", "-n", perHost.ToString(CultureInfo.InvariantCulture), "--to", host, service), $"add-unit {service} --to {host}");
        var units = hosts.Count * perHost;
        await UntilAsync(async () => Units(await StatusAsync(), service).Count(u => u.State == "running") == units, Long, $"{units} units of {service} running");
        var placed = Units(await StatusAsync(), service).GroupBy(u => u.Machine).ToDictionary(g => g.Key, g => g.Count());
        if (hosts.Any(h => placed.GetValueOrDefault(h) != perHost))
            throw new InvalidOperationException($"{service} placed as {string.Join(", ", placed.Select(p => $"{p.Key}: {p.Value}"))}, not {perHost} on each of {string.Join(", ", hosts)}");
    }

    /// <summary>The next revision, uploaded and rolled out with `upgrade-formula --wait`; what it cost.</summary>
    public async Task<Measured> UpgradeAsync(string service, IReadOnlyList<string> hosts)
    {
        var revision = ++_revisions[service];
        var bundleBytes = WriteFormula(service, revision);
        var units = Units(await StatusAsync(), service).Count();
        var controllerBefore = CpuSeconds(_controller.Pid, children: false);
        var agentsBefore = hosts.Sum(h => CpuSeconds(_agents[h].Pid, children: true));

        var clock = Stopwatch.StartNew();
        var upgrade = await EnsembleAsync(Long, "upgrade-formula", "--repository", Repository, "--wait", service);
        clock.Stop();
        Check(upgrade, $"upgrade-formula {service}");
        var controllerCpu = CpuSeconds(_controller.Pid, children: false) - controllerBefore;
        var agentCpu = hosts.Sum(h => CpuSeconds(_agents[h].Pid, children: true)) - agentsBefore;

        var formula = $"local:{service}-{revision}";
        var status = await StatusAsync();
        var upgraded = Units(status, service).Count(u => u.Formula == formula && u.State == "running");
        if (upgraded != units) throw new InvalidOperationException($"after the upgrade {upgraded} of {units} units of {service} run {formula}");

        var fetched = new Regex($@"fetched {Regex.Escape(formula)} \((\d+) bytes\) from controller");
        var received = hosts.ToDictionary(h => h, h =>
        {
            var lines = _agents[h].ReadLog().Split('\n').Select(l => fetched.Match(l)).Where(m => m.Success).ToList();
            return (lines.Sum(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)), lines.Count);
        });
        // The CLI's own start (a status round trip costs about the same) is not the upgrade's.
        var cliStart = Stopwatch.StartNew();
        await StatusAsync();
        cliStart.Stop();
        var wall = clock.Elapsed - cliStart.Elapsed;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"upgraded {service} ({units} units on {string.Join(", ", hosts)}) to {formula}: {clock.Elapsed.TotalSeconds:0.00} s with the CLI, {wall.TotalSeconds:0.00} s without its start, controller {controllerCpu:0.00} CPU s"));
        return new Measured(hosts, units, wall, clock.Elapsed, controllerCpu, agentCpu, bundleBytes, received);
    }

    private static IEnumerable<(string Name, string Machine, string State, string Formula)> Units(JsonElement status, string service) =>
        status.GetProperty("services").TryGetProperty(service, out var s)
            ? s.GetProperty("units").EnumerateObject().Select(u => (u.Name, u.Value.GetProperty("machine").GetString() ?? "",
                u.Value.GetProperty("state").GetString() ?? "", u.Value.GetProperty("formula").GetString() ?? ""))
            : [];

    /// <summary>utime + stime of a process from /proc/PID/stat (with <paramref name="children"/> also of its waited-for children: the hooks).</summary>
    private static double CpuSeconds(int pid, bool children)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
        long Field(int n) => long.Parse(fields[n - 3], CultureInfo.InvariantCulture);
        var ticks = Field(14) + Field(15) + (children ? Field(16) + Field(17) : 0);
        return (double)ticks / ClockTicks;
    }

    /// <summary>The formula of the unit tests' kind: four trivial hooks writing into the unit's data, and 1 MB of random bytes so the bundle has a size worth counting. Returns the file bytes.</summary>
    private long WriteFormula(string name, int revision)
    {
        var dir = Path.Combine(Repository, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(Path.Combine(dir, "hooks"));
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"),
            $"name: {name}\nrevision: {revision.ToString(CultureInfo.InvariantCulture)}\nsummary: benchmarked\ndescription: A formula the multi-host benchmark upgrades.\n");
        foreach (var hook in new[] { "install", "start", "stop", "upgrade-formula" })
        {
            var path = Path.Combine(dir, "hooks", hook);
            File.WriteAllText(path, $"#!/bin/sh\necho \"{hook} {revision}\" >> \"$ENSEMBLE_UNIT_DATA_DIR/hooks.log\"\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var blob = new byte[1_000_000];
        Random.Shared.NextBytes(blob);
        File.WriteAllBytes(Path.Combine(dir, "blob.bin"), blob);
        return Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
    }

    private async Task<JsonElement> StatusAsync()
    {
        var status = await EnsembleAsync(TimeSpan.FromMinutes(2), "status", "--format", "json");
        Check(status, "ensemble status");
        return JsonDocument.Parse(status.Stdout).RootElement.Clone();
    }

    private Task<HostCommandResult> EnsembleAsync(TimeSpan timeout, params string[] args) =>
        Operator.RunAsync(tool.Command, args,
            new Dictionary<string, string?> { ["ENSEMBLE_HOME"] = Path.Combine(Operator.DataRoot, "home"), ["ENSEMBLE_ENVIRONMENT"] = null },
            timeout: timeout);

    private void Check(HostCommandResult result, string what)
    {
        if (result.ExitCode == 0) return;
        throw new InvalidOperationException($"{what} failed: {result}\n{Logs()}");
    }

    private async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {timeout}: {what}\n{Logs()}");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private string Logs() => string.Join("\n", new[] { _controller }.Concat(_agents.Values).Where(p => p is not null).Select(p => $"---- {p} ----\n{p.Tail(30)}"));

    private static string Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Trim();
    }
}

/// <summary>
/// The ensemble command from this build: an `ensemble` launcher (dotnet + the ensemble.dll beside the benchmark) in a
/// directory of its own that every simulated host sees, so add-machine's line runs as printed with it on PATH.
/// </summary>
internal sealed class EnsembleTool : IDisposable
{
    private EnsembleTool(string directory) => Directory = directory;

    public string Directory { get; }
    public string Command => Path.Combine(Directory, "ensemble");

    public static EnsembleTool Create()
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "ensemble.dll");
        if (!File.Exists(cli)) throw new InvalidOperationException($"{cli} is missing: build the benchmark (it references Ensemble.Cli).");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var directory = System.IO.Directory.CreateTempSubdirectory("ensemble-multihost-bench-").FullName;
        var command = Path.Combine(directory, "ensemble");
        File.WriteAllText(command, $"#!/bin/sh\nexec \"{dotnet}\" \"{cli}\" \"$@\"\n");
        File.SetUnixFileMode(command, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                      UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return new EnsembleTool(directory);
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
    }
}
