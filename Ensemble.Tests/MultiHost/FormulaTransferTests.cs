using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// Formulas travel over the network, never through a shared file system: the operator's CLI reads a repository that
/// only its host sees and uploads the bundle to the controller; agent nodes on two other hosts fetch it from the
/// controller, each host each revision exactly once however many of its units use it, and the units on both hosts
/// run the new revision with their data kept.
/// </summary>
public sealed class FormulaTransferTests(ITestOutputHelper output)
{
    /// <summary>A formula whose hooks write only into the unit's data directory (no other host's directory is visible), with a file of random bytes.</summary>
    private static void WriteFormula(string repository, string name, int revision, int randomBytes)
    {
        var dir = Path.Combine(repository, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(Path.Combine(dir, "hooks"));
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"),
            $"name: {name}\nrevision: {revision.ToString(CultureInfo.InvariantCulture)}\nsummary: travels\ndescription: A formula that travels.\n");
        foreach (var hook in new[] { "install", "start", "stop", "upgrade-formula" })
        {
            var path = Path.Combine(dir, "hooks", hook);
            File.WriteAllText(path, $"#!/bin/sh\necho \"{hook} {revision}\" >> \"$ENSEMBLE_UNIT_DATA_DIR/hooks.log\"\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var blob = new byte[randomBytes];
        Random.Shared.NextBytes(blob);
        File.WriteAllBytes(Path.Combine(dir, "blob.bin"), blob);
    }

    private static int Fetches(string log, string formula) =>
        log.Split('\n').Count(l => l.Contains($"fetched {formula} (", StringComparison.Ordinal));

    [Fact]
    public async Task Agents_on_two_hosts_fetch_each_revision_once_from_the_controller_and_run_it()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var (a1, a2) = (env.Network["a1"], env.Network["a2"]);
        var nodes = await env.StartAgentsAsync("a1", "a2");
        var (node1, node2) = (nodes[0], nodes[1]);

        // The repository is on the operator's host only: no other host sees it.
        var repository = Path.Combine(env.Operator.DataRoot, "formulas");
        WriteFormula(repository, "travel", 1, randomBytes: 1_000_000);
        Assert.Equal("", (await env.Controller.RunAsync("ls", ["-A", env.Operator.DataRoot])).Stdout);

        var deploy = await env.EnsembleAsync("deploy", "--repository", repository, "-n", "4", "--wait", "travel");
        Assert.True(deploy.ExitCode == 0, deploy.ToString() + env.Logs());
        var status = await env.StatusAsync();
        var machines = status.GetProperty("services").GetProperty("travel").GetProperty("units").EnumerateObject()
            .Select(u => u.Value.GetProperty("machine").GetString()!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["a1", "a1", "a2", "a2"], machines);

        // Data each unit keeps across the upgrade.
        string DataOf(Ensemble.TestKit.MultiHost.SimulatedHost host, string unit) =>
            Path.Combine(MultiHostEnvironment.DataDirectoryOf(host), "machines", host.Name, "units", unit, "data");
        var units = status.GetProperty("services").GetProperty("travel").GetProperty("units").EnumerateObject()
            .Select(u => (Unit: u.Name, Host: env.Network[u.Value.GetProperty("machine").GetString()!])).ToList();
        foreach (var (unit, host) in units) await File.WriteAllTextAsync(Path.Combine(DataOf(host, unit.Replace('/', '-')), "kept"), unit);

        WriteFormula(repository, "travel", 2, randomBytes: 1_000_000);
        var upgrade = await env.EnsembleAsync("upgrade-formula", "--wait", "travel");
        Assert.True(upgrade.ExitCode == 0, upgrade.ToString() + env.Logs());

        status = await env.StatusAsync();
        foreach (var (unit, host) in units)
        {
            var seen = status.GetProperty("services").GetProperty("travel").GetProperty("units").GetProperty(unit);
            Assert.Equal("local:travel-2", seen.GetProperty("formula").GetString());
            Assert.Equal("running", seen.GetProperty("state").GetString());
            var data = DataOf(host, unit.Replace('/', '-'));
            Assert.Equal(unit, await File.ReadAllTextAsync(Path.Combine(data, "kept")));
            Assert.Contains("upgrade-formula 2", await File.ReadAllTextAsync(Path.Combine(data, "hooks.log")));
        }

        // The operator reads each unit's hook output, from the host the unit runs on, through the controller.
        foreach (var (unit, _) in units)
        {
            var log = await env.EnsembleAsync("log", "-n", "3", unit);
            Assert.True(log.ExitCode == 0, log.ToString());
            Assert.Contains("[start] hook start exited with code 0", log.Stdout);
            Assert.Equal(3, log.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }

        // Each host fetched each revision exactly once, from the controller, and kept it in its cache.
        var controllerAt = new Regex($@"fetched local:travel-\d \(\d+ bytes\) from controller {Regex.Escape(env.Controller.Address)}:{MultiHostEnvironment.ControllerPort}");
        foreach (var node in new[] { node1, node2 })
        {
            var log = node.ReadLog();
            Assert.Equal(1, Fetches(log, "local:travel-1"));
            Assert.Equal(1, Fetches(log, "local:travel-2"));
            Assert.Equal(2, log.Split('\n').Count(controllerAt.IsMatch));
        }
        foreach (var host in new[] { a1, a2 })
            Assert.Equal(2, Directory.GetFiles(Path.Combine(MultiHostEnvironment.DataDirectoryOf(host), "machines", host.Name, "formula-cache"), "*.tar.gz").Length);
        // The controller holds both bundles.
        Assert.Equal(2, Directory.GetFiles(Path.Combine(env.ControllerData, "formula-storage"), "*.tar.gz", SearchOption.AllDirectories).Length);
    }

    [Fact]
    public async Task A_100_MiB_formula_reaches_an_agent_on_another_host_with_memory_far_below_its_size()
    {
        const long MiB = 1024 * 1024;
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1");
        var a1 = env.Network["a1"];
        var node1 = env.StartLine(a1, await env.AddMachineAsync("a1"));
        await node1.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started", TimeSpan.FromSeconds(60), "a1 started");
        var repository = Path.Combine(env.Operator.DataRoot, "formulas");

        // A 10 MiB revision first: pools and heap budgets settle at what any transfer costs; what the 100 MiB
        // revision adds on top is what grows with a formula's size.
        WriteFormula(repository, "big", 1, randomBytes: (int)(10 * MiB));
        var deploy = await env.EnsembleAsync("deploy", "--repository", repository, "--wait", "big");
        Assert.True(deploy.ExitCode == 0, deploy.ToString() + env.Logs());
        var agentPid = NodePid(MultiHostEnvironment.DataDirectoryOf(a1));
        var controllerPid = NodePid(env.ControllerData);
        var (agentWarm, controllerWarm) = (PeakOf(agentPid), PeakOf(controllerPid));

        WriteFormula(repository, "big", 2, randomBytes: (int)(100 * MiB));
        var upgrade = await env.EnsembleAsync("upgrade-formula", "--wait", "big");
        Assert.True(upgrade.ExitCode == 0, upgrade.ToString() + env.Logs());
        var (agentPeak, controllerPeak) = (PeakOf(agentPid), PeakOf(controllerPid));
        output.WriteLine($"peak resident set of the agent node {agentWarm / MiB} MiB after 10 MiB, {agentPeak / MiB} MiB after 100 MiB; " +
                         $"of the controller node {controllerWarm / MiB} MiB after 10 MiB, {controllerPeak / MiB} MiB after 100 MiB");

        var unit = Path.Combine(MultiHostEnvironment.DataDirectoryOf(a1), "machines", "a1", "units", "big-0", "formula", "blob.bin");
        Assert.Equal(100 * MiB, new FileInfo(unit).Length);
        Assert.Equal(1, Fetches(node1.ReadLog(), "local:big-2"));
        Assert.True(agentPeak - agentWarm < 25 * MiB, $"the agent node's peak rose {(agentPeak - agentWarm) / MiB} MiB fetching a 100 MiB formula");
        Assert.True(controllerPeak - controllerWarm < 25 * MiB, $"the controller node's peak rose {(controllerPeak - controllerWarm) / MiB} MiB receiving and serving a 100 MiB formula");
    }

    /// <summary>The node process started with <c>--data-dir DIR</c> (of the processes that carry those arguments, the one with the largest resident set: wrappers that exec it are small).</summary>
    private static int NodePid(string dataDirectory)
    {
        var wanted = $"\0--data-dir\0{dataDirectory}\0";
        var found = new List<(int Pid, long Rss)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (!("\0" + cmdline).Contains(wanted, StringComparison.Ordinal)) continue;
                if (Ensemble.Tests.EndToEnd.EnsembleCommand.ResidentBytes(pid) is { } rss) found.Add((pid, rss));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        Assert.NotEmpty(found);
        return found.MaxBy(p => p.Rss).Pid;
    }

    private static long PeakOf(int pid) => Ensemble.Tests.EndToEnd.EnsembleCommand.PeakResidentBytes(pid)
        ?? throw new InvalidOperationException($"process {pid} is gone");
}
