using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.TestKit;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// An environment as an operator spreads it over hosts (network namespaces; each host's data invisible to the
/// others): a real ZooKeeper, a controller, agent nodes started with the line `ensemble add-machine` printed, and
/// the installed CLI on a host of its own. Every node is a member of one cluster, a node without the right token
/// joins nothing, status lists the machines, and units go where `--to` says.
/// </summary>
public sealed class OneClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Agents_admitted_by_token_join_the_controller_in_one_cluster_and_units_go_where_placed()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2", "stranger");
        var (a1, a2, stranger) = (env.Network["a1"], env.Network["a2"], env.Network["stranger"]);

        // The same environment by its address alone.
        var byAddress = await env.EnsembleAsync("connect", "prod-again", $"{env.Controller.Address}:{MultiHostEnvironment.ControllerPort}");
        Assert.True(byAddress.ExitCode == 0, byAddress.ToString());
        Assert.Contains("connected to environment 'prod'", byAddress.Stdout);

        var line1 = await env.AddMachineAsync("a1");
        var line2 = await env.AddMachineAsync("a2");
        Assert.Matches($@"^ensemble node --roles agent --join {Regex.Escape(env.Controller.Address)}:4711 --token [0-9a-f]{{64}} --machine a1 --data-dir \S+$", line1);
        var token2 = Regex.Match(line2, "--token ([0-9a-f]+)").Groups[1].Value;

        // A node with a wrong token, and one with none, are refused and exit having joined nothing.
        var wrong = await env.RunLineAsync(stranger, line2.Replace(token2, new string('0', 64)));
        Assert.Equal(3, wrong.ExitCode);
        Assert.Contains("the controller refused machine 'a2'", wrong.Stderr);
        var none = await env.RunLineAsync(stranger, Regex.Replace(line2, "--token [0-9a-f]+ ", ""));
        Assert.Equal(3, none.ExitCode);
        Assert.Contains("no join token was given", none.Stderr);

        var node1 = env.StartLine(a1, line1);
        var node2 = env.StartLine(a2, line2);
        await node1.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        await node2.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);

        // One cluster, as every node sees it itself.
        var members = MultiHostEnvironment.MembersLine(
            (env.ControllerNodeAddress, "controller"), ($"akka.tcp://ensemble@{a1.Address}:", "agent"), ($"akka.tcp://ensemble@{a2.Address}:", "agent"));
        foreach (var node in new[] { env.ControllerNode, node1, node2 })
            await env.WaitForLinesAsync(node, members, 1, TimeSpan.FromSeconds(60));
        // The stranger is named in the controller's refusal, but never as a member nor as a node joining.
        foreach (var node in new[] { env.ControllerNode, node1, node2 })
            Assert.DoesNotContain(node.ReadLog().Split('\n'), l => l.Contains($"@{stranger.Address}:", StringComparison.Ordinal) &&
                (l.Contains("cluster members as this node sees them", StringComparison.Ordinal) || l.Contains("is JOINING", StringComparison.Ordinal)));
        var controllerLog = env.ControllerNode.ReadLog();
        Assert.Contains("refused to admit a node: machine 'a2' asked to join from", controllerLog);
        Assert.Contains("with a wrong token", controllerLog);
        Assert.Contains("without a token", controllerLog);

        // Status: both machines started at their addresses, and nothing of the stranger.
        var status = await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && MultiHostEnvironment.MachineState(s, "a2") == "started",
            TimeSpan.FromSeconds(30), "a1 and a2 started");
        var machines = status.GetProperty("machines");
        Assert.Equal(["a1", "a2"], machines.EnumerateObject().Select(m => m.Name).ToArray());
        Assert.StartsWith($"{a1.Address}:", machines.GetProperty("a1").GetProperty("address").GetString());
        Assert.StartsWith($"{a2.Address}:", machines.GetProperty("a2").GetProperty("address").GetString());
        Assert.True(DateTimeOffset.Parse(machines.GetProperty("a1").GetProperty("since").GetString()!) > DateTimeOffset.UtcNow.AddMinutes(-5));
        var table = await env.EnsembleAsync("status");
        Assert.Matches($@"(?m)^a1\s+{Regex.Escape(a1.Address)}:\d+\s+started\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ", table.Stdout);

        // --to puts the unit on a2 (its directory appears on a2 only); without it units spread over the started machines.
        var repository = Path.Combine(env.SharedDirectory, "formulas");
        TestFormulas.Write(repository, "hello", revision: 1);
        var deploy = await env.EnsembleAsync("deploy", "--repository", repository, "--to", "a2", "hello");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        var added = await env.EnsembleAsync("add-unit", "-n", "2", "hello");
        Assert.True(added.ExitCode == 0, added.ToString());
        status = await env.StatusAsync();
        var units = status.GetProperty("services").GetProperty("hello").GetProperty("units");
        Assert.Equal("a2", units.GetProperty("hello/0").GetProperty("machine").GetString());
        Assert.Equal("a1", units.GetProperty("hello/1").GetProperty("machine").GetString());
        Assert.Equal("a1", units.GetProperty("hello/2").GetProperty("machine").GetString());
        Assert.Equal(["hello/0"], status.GetProperty("machines").GetProperty("a2").GetProperty("units").EnumerateArray().Select(u => u.GetString()!).ToArray());
        string UnitDirectory(Ensemble.TestKit.MultiHost.SimulatedHost host, string unit) =>
            Path.Combine(MultiHostEnvironment.DataDirectoryOf(host), "machines", host.Name, "units", unit);
        await Eventually(() => Directory.Exists(UnitDirectory(a2, "hello-0")) && Directory.Exists(UnitDirectory(a1, "hello-1")), "the units' directories");
        Assert.False(Directory.Exists(UnitDirectory(a1, "hello-0")));
        Assert.False(Directory.Exists(UnitDirectory(a2, "hello-1")));
        Assert.False(Directory.Exists(Path.Combine(env.ControllerData, "machines")));

        // --to a machine that is not there, or not a machine name: refused, nothing added.
        var unknown = await env.EnsembleAsync("add-unit", "--to", "a9", "hello");
        Assert.Equal(3, unknown.ExitCode);
        Assert.Contains("machine 'a9' does not exist", unknown.Stderr);
        Assert.Equal(2, (await env.EnsembleAsync("add-unit", "--to", "A9", "hello")).ExitCode);
        Assert.Equal(3, (await env.StatusAsync()).GetProperty("services").GetProperty("hello").GetProperty("units").EnumerateObject().Count());

        // A machine that hosts units stays; one that hosts none is removed, and its node goes out of the cluster.
        Assert.Equal(6, (await env.EnsembleAsync("remove-machine", "a2")).ExitCode);
        Assert.Equal(0, (await env.EnsembleAsync("remove-unit", "hello/0")).ExitCode);
        Assert.Equal(0, (await env.EnsembleAsync("remove-machine", "a2")).ExitCode);
        await node2.WaitForOutputAsync("the controller refused machine 'a2'", TimeSpan.FromSeconds(60));
        Assert.Equal(3, await node2.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        status = await env.StatusAsync();
        Assert.Equal(["a1"], status.GetProperty("machines").EnumerateObject().Select(m => m.Name).ToArray());
        Assert.False(node1.HasExited);
    }

    [Fact]
    public async Task Units_spread_over_the_machines_and_an_agent_node_killed_shows_as_down_since_then()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2", "nobody");
        var (a1, a2, nobody) = (env.Network["a1"], env.Network["a2"], env.Network["nobody"]);

        // Contact points are tried in turn: the first names a host where nothing listens, the second the controller.
        var port = MultiHostEnvironment.ControllerPort;
        var twoPoints = await env.EnsembleAsync("connect", "prod-two", $"{nobody.Address}:{port},{env.Controller.Address}:{port}");
        Assert.True(twoPoints.ExitCode == 0, twoPoints.ToString());
        Assert.Contains("connected to environment 'prod'", twoPoints.Stdout);
        Assert.Equal(0, (await env.EnsembleAsync("status")).ExitCode);
        // No contact point answers: one sentence, a non-zero exit, nothing registered.
        var deadOnly = await env.EnsembleAsync("connect", "nowhere", $"{nobody.Address}:{port}");
        Assert.NotEqual(0, deadOnly.ExitCode);
        Assert.DoesNotContain("Unhandled exception", deadOnly.Stderr);
        Assert.Contains($"{nobody.Address}:{port}", deadOnly.Stderr);

        var node1 = env.StartLine(a1, await env.AddMachineAsync("a1"));
        // a2 binds every address and tells the others the one they reach it at (--public-host).
        var node2 = env.StartLine(a2, await env.AddMachineAsync("a2") + $" --host 0.0.0.0 --public-host {a2.Address}");
        await node1.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        await node2.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        var started = await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && MultiHostEnvironment.MachineState(s, "a2") == "started",
            TimeSpan.FromSeconds(60), "a1 and a2 started");
        Assert.StartsWith($"{a2.Address}:", started.GetProperty("machines").GetProperty("a2").GetProperty("address").GetString());
        await env.WaitForLinesAsync(env.ControllerNode, MultiHostEnvironment.MembersLine(
            (env.ControllerNodeAddress, "controller"), ($"akka.tcp://ensemble@{a1.Address}:", "agent"), ($"akka.tcp://ensemble@{a2.Address}:", "agent")), 1, TimeSpan.FromSeconds(30));

        // Without --to, two units land one on each machine.
        var repository = Path.Combine(env.SharedDirectory, "formulas");
        TestFormulas.Write(repository, "hello", revision: 1);
        var deploy = await env.EnsembleAsync("deploy", "--repository", repository, "-n", "2", "hello");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        var status = await env.StatusAsync();
        var placed = status.GetProperty("services").GetProperty("hello").GetProperty("units").EnumerateObject()
            .Select(u => u.Value.GetProperty("machine").GetString()!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["a1", "a2"], placed);

        // kill -9 of a1's node: status shows a1 down (after lost, while the cluster decides), since after the kill; a2 stays started.
        var killed = DateTimeOffset.UtcNow;
        node1.Kill();
        await node1.WaitForExitAsync(TimeSpan.FromSeconds(30));
        status = await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "down", TimeSpan.FromSeconds(90), "a1 down");
        var a1Status = status.GetProperty("machines").GetProperty("a1");
        Assert.True(DateTimeOffset.Parse(a1Status.GetProperty("since").GetString()!, System.Globalization.CultureInfo.InvariantCulture) >= killed.AddSeconds(-1),
            $"a1 is down since {a1Status.GetProperty("since")}, before it was killed at {killed:O}");
        Assert.Equal("started", MultiHostEnvironment.MachineState(status, "a2"));
        Assert.Single(a1Status.GetProperty("units").EnumerateArray());
        var table = await env.EnsembleAsync("status");
        Assert.Matches(@"(?m)^a1\s+\S+\s+down\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+hello/\d", table.Stdout);
        Assert.Matches(@"(?m)^a2\s+\S+\s+started\s+", table.Stdout);
        Assert.False(node2.HasExited);
    }

    [Fact]
    public async Task After_the_controller_is_killed_and_started_again_the_cli_finds_it_and_the_agent_rejoins_by_itself()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1");
        var a1 = env.Network["a1"];
        var node1 = env.StartLine(a1, await env.AddMachineAsync("a1"));
        await node1.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started", TimeSpan.FromSeconds(60), "a1 started");

        // kill -9 of the controller: the CLI says so in one sentence, exit 7, no crash.
        env.ControllerNode.Kill();
        await env.ControllerNode.WaitForExitAsync(TimeSpan.FromSeconds(30));
        var away = await env.EnsembleAsync("status");
        Assert.Equal(7, away.ExitCode);
        Assert.Contains("environment 'prod' is not answering", away.Stderr);
        Assert.DoesNotContain("Unhandled exception", away.Stderr);

        // Started again with the same flags: the CLI reaches it with the connection it has, and a1's node, never
        // restarted by anyone, is admitted again and started.
        await env.StartControllerAsync();
        var back = await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started", TimeSpan.FromSeconds(150), "a1 started again");
        Assert.False(node1.HasExited);
        Assert.Equal(["a1"], back.GetProperty("machines").EnumerateObject().Select(m => m.Name).ToArray());
        await env.WaitForLinesAsync(env.ControllerNode, MultiHostEnvironment.MembersLine(
            (env.ControllerNodeAddress, "controller"), ($"akka.tcp://ensemble@{a1.Address}:", "agent")), 1, TimeSpan.FromSeconds(30));
    }

    private static Task Eventually(Func<bool> condition, string what) =>
        LocalEnvironment.WaitUntilAsync(() => Task.FromResult(condition()), TimeSpan.FromSeconds(30), what);
}
