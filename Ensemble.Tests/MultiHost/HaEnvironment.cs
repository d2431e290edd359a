using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.TestKit;
using Ensemble.TestKit.MultiHost;
using Ensemble.Tests.EndToEnd;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// An environment with three controllers on their own hosts, as an operator builds one: ZooKeeper on "zk", PostgreSQL
/// on "db", the first controller on "c1" started with --journal, the installed ensemble command on "operator"
/// connected to it, then the two lines `ensemble enable-ha` printed run on "c2" and "c3", and agent nodes on "a1" and
/// "a2" started with the lines `ensemble add-machine` printed.
/// </summary>
public sealed class HaEnvironment : IAsyncDisposable
{
    public const int ControllerPort = 4711;
    public const string Environment = "prod";
    public static readonly string[] ControllerHosts = ["c1", "c2", "c3"];
    public static readonly string[] AgentHosts = ["a1", "a2"];

    private readonly ITestOutputHelper _output;
    private readonly List<HostProcess> _nodes = [];
    private readonly string _shared;

    private HaEnvironment(SimulatedNetwork network, ITestOutputHelper output)
    {
        Network = network;
        _output = output;
        _shared = Directory.CreateTempSubdirectory("ensemble-ha-").FullName;
    }

    public SimulatedNetwork Network { get; }
    public SimulatedHost Operator => Network["operator"];
    public HostedZooKeeper ZooKeeper { get; private set; } = null!;
    public HostedPostgres Postgres { get; private set; } = null!;
    public Dictionary<string, HostProcess> Controllers { get; } = [];
    public Dictionary<string, HostProcess> Agents { get; } = [];
    public string Repository => Path.Combine(_shared, "formulas");
    public string Control => TestFormulas.ControlDirectory(Repository);

    public static async Task<HaEnvironment> StartAsync(ITestOutputHelper output)
    {
        _ = InstalledTool.Command;
        var network = await SimulatedNetwork.CreateAsync();
        var env = new HaEnvironment(network, output);
        try
        {
            await network.AddHostsAsync(["zk", "db", "operator", .. ControllerHosts, .. AgentHosts]);
            env.ZooKeeper = await network["zk"].StartZooKeeperAsync();
            env.Postgres = await network["db"].StartPostgresAsync();

            var c1 = network["c1"];
            env.Controllers["c1"] = env.StartNode(c1, InstalledTool.Command,
                ["node", "--roles", "controller", "--environment", Environment, "--host", c1.Address,
                 "--port", ControllerPort.ToString(CultureInfo.InvariantCulture), "--data-dir", DataDirectoryOf(c1),
                 "--zookeeper", env.ZooKeeper.ConnectionString], "controller");
            await env.Controllers["c1"].WaitForOutputAsync(" is up", MultiHostEnvironment.NodeStart);
            var file = Path.Combine(env.Operator.DataRoot, "prod-connection.json");
            File.Copy(Path.Combine(DataDirectoryOf(c1), "connection.json"), file);
            var connect = await env.EnsembleAsync("connect", Environment, file);
            Assert.True(connect.ExitCode == 0, connect.ToString());

            // What an operator does: ask for the lines, run one on each new controller host with its own address.
            var plan = await env.EnsembleAsync("enable-ha");
            Assert.True(plan.ExitCode == 0, plan.ToString());
            var lines = plan.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();
            Assert.Equal(2, lines.Count);
            foreach (var (line, name) in lines.Zip(new[] { "c2", "c3" }))
            {
                var host = network[name];
                var own = Regex.Replace(line.Replace(" --host HOST ", $" --host {host.Address} ", StringComparison.Ordinal),
                    @"--data-dir \S+", "--data-dir " + DataDirectoryOf(host));
                env.Controllers[name] = env.StartNode(host, "/bin/sh", ["-c", "exec " + own], "controller");
            }
            foreach (var name in new[] { "c2", "c3" }) await env.Controllers[name].WaitForOutputAsync(" is up", MultiHostEnvironment.NodeStart);
            // status lists the three controllers, and the command remembers them all for the next time.
            await env.StatusUntilAsync(s => ControllerAddresses(s).Count == 3 && ActiveController(s) is not null, TimeSpan.FromSeconds(60), "three controllers");

            foreach (var name in AgentHosts)
            {
                var added = await env.EnsembleAsync("add-machine", name, "--data-dir", DataDirectoryOf(network[name]));
                Assert.True(added.ExitCode == 0, added.ToString());
                var line = Assert.Single(added.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => !l.StartsWith('#'));
                env.Agents[name] = env.StartNode(network[name], "/bin/sh", ["-c", "exec " + line], "agent");
            }
            foreach (var agent in env.Agents.Values) await agent.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
            await env.StatusUntilAsync(s => AgentHosts.All(a => MultiHostEnvironment.MachineState(s, a) == "started"), TimeSpan.FromSeconds(60), "a1 and a2 started");
        }
        catch
        {
            await env.DisposeAsync();
            throw;
        }
        return env;
    }

    public static string DataDirectoryOf(SimulatedHost host) => Path.Combine(host.DataRoot, "node");

    /// <summary>A node on <paramref name="host"/>, the ensemble command on PATH and the journal's connection string in ENSEMBLE_JOURNAL.</summary>
    private HostProcess StartNode(SimulatedHost host, string file, string[] args, string name)
    {
        var node = host.Start(file, args, new Dictionary<string, string?>
        {
            ["PATH"] = InstalledTool.ToolPath + ":" + System.Environment.GetEnvironmentVariable("PATH"),
            ["ENSEMBLE_JOURNAL"] = name == "controller" ? Postgres.ConnectionString : null,
        }, name: $"{name}-{host.Name}");
        _nodes.Add(node);
        return node;
    }

    /// <summary>The installed ensemble command on the operator's host, with its own ENSEMBLE_HOME.</summary>
    public async Task<CommandResult> EnsembleAsync(params string[] args)
    {
        var result = await Operator.RunAsync(InstalledTool.Command, args, CliEnvironment(), timeout: TimeSpan.FromMinutes(2));
        var outcome = new CommandResult(result.ExitCode, result.Stdout, result.Stderr);
        _output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{outcome}");
        return outcome;
    }

    /// <summary>The ensemble command started on the operator's host and left running (a --wait).</summary>
    public HostProcess StartEnsemble(string name, params string[] args)
    {
        var process = Operator.Start(InstalledTool.Command, args, CliEnvironment(), name: name);
        _nodes.Add(process);
        return process;
    }

    private Dictionary<string, string?> CliEnvironment() =>
        new() { ["ENSEMBLE_HOME"] = Path.Combine(Operator.DataRoot, "home"), ["ENSEMBLE_ENVIRONMENT"] = null };

    /// <summary>Waits until the status satisfies <paramref name="condition"/>; returns that status.</summary>
    public async Task<JsonElement> StatusUntilAsync(Func<JsonElement, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await EnsembleAsync("status", "--format", "json");
            if (status.ExitCode == 0)
            {
                var parsed = JsonDocument.Parse(status.Stdout).RootElement.Clone();
                if (condition(parsed)) return parsed;
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"status never showed {what} within {timeout}; last:\n{status}\n{Logs()}");
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }
    }

    public static IReadOnlyList<string> ControllerAddresses(JsonElement status) =>
        status.GetProperty("controllers").EnumerateArray().Select(c => c.GetProperty("address").GetString()!).ToList();

    /// <summary>The HOST:PORT of the active controller, as status shows it.</summary>
    public static string? ActiveController(JsonElement status) =>
        status.GetProperty("controllers").EnumerateArray().Where(c => c.GetProperty("active").GetBoolean())
            .Select(c => c.GetProperty("address").GetString()).SingleOrDefault();

    public string AddressOf(string host) => $"{Network[host].Address}:{ControllerPort}";

    /// <summary>Every line the hooks of every unit wrote to the shared trace.</summary>
    public IReadOnlyList<string> SharedTrace()
    {
        var path = Path.Combine(Control, "shared.log");
        return File.Exists(path) ? File.ReadAllLines(path) : [];
    }

    public int Count(string hookLine) => SharedTrace().Count(l => l.EndsWith(" " + hookLine, StringComparison.Ordinal));

    public static Task Until(Func<bool> condition, TimeSpan timeout, string what) =>
        LocalEnvironment.WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    public string Logs() => string.Join("\n", _nodes.Select(n => $"---- {n} ----\n{n.Tail(n.Name.StartsWith("controller", StringComparison.Ordinal) ? 150 : 40)}"));

    public async ValueTask DisposeAsync()
    {
        _output.WriteLine(Logs());
        // For a failure to be read at leisure: every node's whole log, kept where ENSEMBLE_TEST_KEEP_LOGS says.
        if (System.Environment.GetEnvironmentVariable("ENSEMBLE_TEST_KEEP_LOGS") is { Length: > 0 } keep)
        {
            var target = Path.Combine(keep, Network.Id);
            Directory.CreateDirectory(target);
            foreach (var node in _nodes.Where(n => File.Exists(n.LogPath)))
                File.Copy(node.LogPath, Path.Combine(target, $"{node.Name}-{node.Pid}.log"), overwrite: true);
        }
        try { await Network.DisposeAsync(); }
        finally
        {
            try { Directory.Delete(_shared, recursive: true); }
            catch (IOException) { }
        }
    }
}
