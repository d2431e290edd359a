using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.TestKit.MultiHost;
using Ensemble.Tests.EndToEnd;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// An environment spread over simulated hosts as an operator builds it: ZooKeeper on "zk", a controller node on
/// "controller", the installed ensemble command on "operator" (connected with the controller's connection file),
/// and agent nodes started on their own hosts with the line `ensemble add-machine` printed, run as printed.
/// </summary>
public sealed class MultiHostEnvironment : IAsyncDisposable
{
    public const int ControllerPort = 4711;
    public const string Environment = "prod";
    public static readonly TimeSpan NodeStart = TimeSpan.FromSeconds(90);

    private readonly ITestOutputHelper _output;
    private readonly List<HostProcess> _nodes = [];
    private readonly string _shared;

    private MultiHostEnvironment(SimulatedNetwork network, ITestOutputHelper output)
    {
        Network = network;
        _output = output;
        // Outside the network's directory: every host sees it (a formula repository the controller reads).
        _shared = Directory.CreateTempSubdirectory("ensemble-multihost-").FullName;
    }

    public SimulatedNetwork Network { get; }
    public SimulatedHost Controller => Network["controller"];
    public SimulatedHost Operator => Network["operator"];
    public HostedZooKeeper ZooKeeper { get; private set; } = null!;
    public HostProcess ControllerNode { get; private set; } = null!;
    public string ControllerData => Path.Combine(Controller.DataRoot, "node");
    public string SharedDirectory => _shared;

    /// <summary>akka.tcp://ensemble@ADDR:4711: the controller's node, as members and status name it.</summary>
    public string ControllerNodeAddress => $"akka.tcp://ensemble@{Controller.Address}:{ControllerPort}";

    /// <summary>The hosts zk, controller and operator plus <paramref name="others"/>; ZooKeeper and the controller running, the CLI connected.</summary>
    public static async Task<MultiHostEnvironment> StartAsync(ITestOutputHelper output, params string[] others)
    {
        _ = InstalledTool.Command;
        var network = await SimulatedNetwork.CreateAsync();
        var environment = new MultiHostEnvironment(network, output);
        try
        {
            await network.AddHostsAsync(["zk", "controller", "operator", .. others]);
            environment.ZooKeeper = await network["zk"].StartZooKeeperAsync();
            await environment.StartControllerAsync();
            var connect = await environment.EnsembleAsync("connect", Environment, await environment.CopyConnectionFileAsync());
            Assert.True(connect.ExitCode == 0, connect.ToString());
        }
        catch
        {
            await environment.DisposeAsync();
            throw;
        }
        return environment;
    }

    /// <summary>The controller node, started (again) with the same flags, port and data directory.</summary>
    public async Task StartControllerAsync()
    {
        ControllerNode = Controller.Start(InstalledTool.Command,
            ["node", "--roles", "controller", "--environment", Environment, "--host", Controller.Address,
             "--port", ControllerPort.ToString(CultureInfo.InvariantCulture), "--data-dir", ControllerData,
             "--zookeeper", ZooKeeper.ConnectionString], name: "controller");
        _nodes.Add(ControllerNode);
        await ControllerNode.WaitForOutputAsync(" is up", NodeStart);
    }

    /// <summary>The controller's connection file, read on its host and handed to the operator as a file in its data root.</summary>
    public async Task<string> CopyConnectionFileAsync()
    {
        var read = await Controller.RunAsync("cat", [Path.Combine(ControllerData, "connection.json")]);
        Assert.True(read.ExitCode == 0, read.Stderr);
        var path = Path.Combine(Operator.DataRoot, "prod-connection.json");
        await File.WriteAllTextAsync(path, read.Stdout);
        return path;
    }

    /// <summary>The installed ensemble command on the operator's host, with its own ENSEMBLE_HOME.</summary>
    public async Task<CommandResult> EnsembleAsync(params string[] args)
    {
        var result = await Operator.RunAsync(InstalledTool.Command, args,
            new Dictionary<string, string?> { ["ENSEMBLE_HOME"] = Path.Combine(Operator.DataRoot, "home"), ["ENSEMBLE_ENVIRONMENT"] = null },
            timeout: TimeSpan.FromMinutes(2));
        var outcome = new CommandResult(result.ExitCode, result.Stdout, result.Stderr);
        _output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{outcome}");
        return outcome;
    }

    /// <summary>`ensemble add-machine NAME`: the line it printed to run on the machine.</summary>
    public async Task<string> AddMachineAsync(string machine)
    {
        var added = await EnsembleAsync("add-machine", machine, "--data-dir", DataDirectoryOf(Network[machine]));
        Assert.True(added.ExitCode == 0, added.ToString());
        var lines = added.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return Assert.Single(lines, l => !l.StartsWith('#'));
    }

    /// <summary>
    /// Adds each machine (named as its host), runs add-machine's line on its host, and waits until every node is up
    /// and status shows every machine started; the nodes, in order.
    /// </summary>
    public async Task<IReadOnlyList<HostProcess>> StartAgentsAsync(params string[] machines)
    {
        var nodes = new List<HostProcess>();
        foreach (var machine in machines) nodes.Add(StartLine(Network[machine], await AddMachineAsync(machine)));
        foreach (var node in nodes) await node.WaitForOutputAsync("is up", NodeStart);
        await StatusUntilAsync(s => machines.All(m => MachineState(s, m) == "started"), TimeSpan.FromSeconds(60), $"{string.Join(" and ", machines)} started");
        return nodes;
    }

    public static string DataDirectoryOf(SimulatedHost host) => Path.Combine(host.DataRoot, "node");

    /// <summary>Runs the printed line on <paramref name="host"/> as an operator would: in a shell, the ensemble command on PATH.</summary>
    public HostProcess StartLine(SimulatedHost host, string line, string name = "agent")
    {
        var node = host.Start("/bin/sh", ["-c", "exec " + line], OnPath(), name: name);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Runs the line to completion (a node that is expected to be refused and exit).</summary>
    public async Task<HostCommandResult> RunLineAsync(SimulatedHost host, string line)
    {
        var result = await host.RunAsync("/bin/sh", ["-c", "exec " + line], OnPath(), timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine($"$ {line}   (on {host.Name})\nexit {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        return result;
    }

    private static Dictionary<string, string?> OnPath() =>
        new() { ["PATH"] = InstalledTool.ToolPath + ":" + System.Environment.GetEnvironmentVariable("PATH") };

    /// <summary>`ensemble status --format json`, parsed (the command must succeed).</summary>
    public async Task<JsonElement> StatusAsync()
    {
        var status = await EnsembleAsync("status", "--format", "json");
        Assert.True(status.ExitCode == 0, status.ToString());
        return JsonDocument.Parse(status.Stdout).RootElement.Clone();
    }

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
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    public static string? MachineState(JsonElement status, string machine) =>
        status.GetProperty("machines").TryGetProperty(machine, out var m) ? m.GetProperty("state").GetString() : null;

    /// <summary>Waits until at least <paramref name="count"/> lines of the node's output match <paramref name="pattern"/>.</summary>
    public async Task WaitForLinesAsync(HostProcess node, Regex pattern, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (node.ReadLog().Split('\n').Count(pattern.IsMatch) < count)
        {
            if (node.HasExited) throw new InvalidOperationException($"{node} exited with {node.ExitCode}:\n{node.Tail(60)}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{node} printed fewer than {count} lines matching /{pattern}/ within {timeout}:\n{Logs()}");
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>A line of a node's log that lists, as that node sees them, exactly these members, all up and reachable.</summary>
    public static Regex MembersLine(params (string Address, string Roles)[] members) => new(
        "cluster members as this node sees them: " +
        string.Join(", ", members.OrderBy(m => m.Address, StringComparer.Ordinal)
            .Select(m => Regex.Escape(m.Address) + (m.Address.EndsWith(':') ? @"\d+" : "") + Regex.Escape($" ({m.Roles}, up)"))) + "$");

    /// <summary>The last lines of every node's output, for a failure message.</summary>
    public string Logs() => string.Join("\n", _nodes.Select(n => $"---- {n} ----\n{n.Tail(40)}"));

    public async ValueTask DisposeAsync()
    {
        _output.WriteLine(Logs());
        try { await Network.DisposeAsync(); }
        finally
        {
            try { Directory.Delete(_shared, recursive: true); }
            catch (IOException) { }
        }
    }
}
