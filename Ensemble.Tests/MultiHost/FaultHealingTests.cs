using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.Hosting;
using Ensemble.TestKit;
using Ensemble.TestKit.MultiHost;
using Ensemble.Tests.EndToEnd;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// Faults in the middle of an upgrade heal without a person (issue 10, point 8): a host cut off longer than its
/// ZooKeeper session, an agent node killed -9 and started again with its line, the controller killed -9 and started
/// again with its flags. Each time every unit on both agent hosts ends on the new revision with its data kept, and
/// its upgrade-formula hook ran to its end exactly once.
/// </summary>
public sealed class FaultHealingTests(ITestOutputHelper output)
{
    private const string Service = "hello";
    private static readonly string[] Units = ["hello/0", "hello/1", "hello/2", "hello/3"];
    private static readonly TimeSpan Healing = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_host_cut_off_past_its_zookeeper_session_comes_back_by_itself_with_a_new_session_and_finishes_its_upgrade()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var fleet = await Fleet.DeployAsync(env);
        var a1 = env.Network["a1"];
        var (sessionFile, before) = SavedSession(a1);

        await fleet.StartHeldUpgradeAsync();
        await a1.CutOffAsync();
        // a1's hooks end while it is cut off; what they did reaches the others only after it is back.
        fleet.Release();

        // ZooKeeper itself ends a1's session: the cut lasts past the session timeout.
        await env.ZooKeeper.Process.WaitForOutputAsync(new Regex($"Expiring session 0x0*{before:x}\\b"), TimeSpan.FromSeconds(60));
        // Meanwhile the upgrade says which machine it waits for, and since when.
        var waiting = await env.StatusUntilAsync(s => fleet.UnitsOn("a1").All(u => Progress(s, u)?.StartsWith("waiting for machine a1, ", StringComparison.Ordinal) == true),
            TimeSpan.FromSeconds(60), "a1's units waiting for machine a1");
        foreach (var unit in fleet.UnitsOn("a1"))
            Assert.Matches(@"^waiting for machine a1, (down|lost) since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", Progress(waiting, unit));
        Assert.NotEqual("started", MultiHostEnvironment.MachineState(waiting, "a1"));

        await a1.HealAsync();
        // Whichever way it heals (a new session in the same actor system, or the cluster downed the node and it
        // rejoined through the join gate in the same process), the outcome is the same.
        var healed = await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && fleet.AllUpgraded(s),
            Healing, "a1 started again and every unit on revision 2");
        Assert.False(fleet.Node("a1").HasExited, "a1's node exited instead of healing");
        Assert.True(Directory.Exists($"/proc/{fleet.Node("a1").Pid}"), "a1's node is not the process that was started");
        var after = ZooKeeperSessionFile.Load(sessionFile)?.SessionId;
        Assert.True(after is { } renewed && renewed != before, $"a1's agent still holds session 0x{before:x} (now {after:x})");
        Assert.Equal("started", MultiHostEnvironment.MachineState(healed, "a2"));
        fleet.AssertDataKeptAndHookRanOnce();
    }

    [Fact]
    public async Task A_host_cut_off_from_zookeeper_alone_past_its_session_opens_a_new_one_in_the_same_actor_system_and_finishes_its_upgrade()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var fleet = await Fleet.DeployAsync(env);
        var a1 = env.Network["a1"];
        var (sessionFile, before) = SavedSession(a1);

        await fleet.StartHeldUpgradeAsync();
        // a1 keeps the cluster (the controller and a2 reach it) and loses ZooKeeper only.
        await a1.CutOffFromAsync(env.ZooKeeper.Host);
        fleet.Release();
        await env.ZooKeeper.Process.WaitForOutputAsync(new Regex($"Expiring session 0x0*{before:x}\\b"), TimeSpan.FromSeconds(60));
        await a1.ReconnectToAsync(env.ZooKeeper.Host);

        await fleet.Node("a1").WaitForOutputAsync(new Regex($"ZooKeeper session 0x[0-9a-f]+ replaces the expired 0x0*{before:x}\\b"), Healing);
        await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && fleet.AllUpgraded(s), Healing, "a1 started and every unit on revision 2");
        var log = fleet.Node("a1").ReadLog();
        Assert.DoesNotContain("is up again", log);
        Assert.False(fleet.Node("a1").HasExited);
        Assert.NotEqual(before, ZooKeeperSessionFile.Load(sessionFile)?.SessionId);
        fleet.AssertDataKeptAndHookRanOnce();
    }

    [Fact]
    public async Task An_agent_node_killed_mid_upgrade_and_started_again_with_its_line_finishes_the_upgrade()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var fleet = await Fleet.DeployAsync(env);
        await fleet.StartHeldUpgradeAsync();

        // kill -9 of the node and of the hooks it runs, as a crashed host ends them.
        var killed = fleet.Node("a1");
        killed.Kill();
        await killed.WaitForExitAsync(TimeSpan.FromSeconds(30));
        var restarted = env.StartLine(env.Network["a1"], fleet.Lines["a1"]);
        await restarted.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        // The restarted agent runs the interrupted hook again (held still, so it is seen to begin a second time).
        foreach (var unit in fleet.UnitsOn("a1"))
            await Until(() => fleet.Trace(unit).Count(l => l == "upgrade-formula 2 begin") == 2, TimeSpan.FromSeconds(90), $"{unit}'s hook begun again");
        fleet.Release();

        await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && fleet.AllUpgraded(s), Healing, "every unit on revision 2");
        fleet.AssertDataKeptAndHookRanOnce();
    }

    [Fact]
    public async Task The_controller_killed_mid_upgrade_and_started_again_resumes_it_and_the_waiting_cli_says_what_happened()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var fleet = await Fleet.DeployAsync(env);
        var waiter = await fleet.StartHeldUpgradeAsync(wait: true);

        env.ControllerNode.Kill();
        await env.ControllerNode.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await env.StartControllerAsync();
        fleet.Release();

        // The command that waited either found the controller again and saw the end (0), or gave up in one sentence (7).
        var code = await waiter.WaitForExitAsync(Healing);
        var said = waiter.ReadLog();
        output.WriteLine($"the waiting upgrade-formula --wait ended with {code}:\n{said}");
        Assert.DoesNotContain("Unhandled exception", said);
        if (code == 7)
            Assert.Contains($"stopped following the upgrade of '{Service}': environment 'prod' has not answered for 30 s; the upgrade goes on in the environment", said);
        else
            Assert.True(code == 0, $"upgrade-formula --wait ended with {code}:\n{said}");

        await env.StatusUntilAsync(fleet.AllUpgraded, Healing, "every unit on revision 2");
        fleet.AssertDataKeptAndHookRanOnce();
        // The table an operator reads afterwards shows the finished upgrade too.
        var table = await env.EnsembleAsync("status", Service);
        Assert.True(table.ExitCode == 0, table.ToString());
        foreach (var unit in Units) Assert.Matches($@"(?m)^{Regex.Escape(unit)}\s.*local:hello-2", table.Stdout);
    }

    private static string? Progress(JsonElement status, string unit) =>
        status.GetProperty("services").GetProperty(Service).GetProperty("units").GetProperty(unit).GetProperty("progress").GetString();

    /// <summary>The file where a host's agent saves its ZooKeeper session, and the session saved there now.</summary>
    private static (string File, long SessionId) SavedSession(SimulatedHost host)
    {
        var file = Path.Combine(MultiHostEnvironment.DataDirectoryOf(host), "machines", host.Name, "zookeeper-session.json");
        return (file, ZooKeeperSessionFile.Load(file)?.SessionId ?? throw new InvalidOperationException($"no session in {file}"));
    }

    private static Task Until(Func<bool> condition, TimeSpan timeout, string what) =>
        LocalEnvironment.WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    /// <summary>Four units of hello over agent nodes on a1 and a2, each with a file of data it must keep.</summary>
    private sealed class Fleet
    {
        private readonly MultiHostEnvironment _env;
        private readonly Dictionary<string, HostProcess> _nodes = [];
        private readonly Dictionary<string, string> _machineOf = [];

        private Fleet(MultiHostEnvironment env) => _env = env;

        public Dictionary<string, string> Lines { get; } = [];
        private string Repository => Path.Combine(_env.SharedDirectory, "formulas");
        private string Control => TestFormulas.ControlDirectory(Repository);
        private string HoldFile => Path.Combine(Control, "hold-upgrade-formula");

        public static async Task<Fleet> DeployAsync(MultiHostEnvironment env)
        {
            var fleet = new Fleet(env);
            foreach (var machine in new[] { "a1", "a2" })
            {
                fleet.Lines[machine] = await env.AddMachineAsync(machine);
                fleet._nodes[machine] = env.StartLine(env.Network[machine], fleet.Lines[machine]);
            }
            foreach (var node in fleet._nodes.Values) await node.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
            await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a1") == "started" && MultiHostEnvironment.MachineState(s, "a2") == "started",
                TimeSpan.FromSeconds(60), "a1 and a2 started");

            TestFormulas.Write(fleet.Repository, Service, revision: 1);
            var deploy = await env.EnsembleAsync("deploy", "--repository", fleet.Repository, "-n", Units.Length.ToString(CultureInfo.InvariantCulture), "--wait", Service);
            Assert.True(deploy.ExitCode == 0, deploy.ToString() + env.Logs());
            var status = await env.StatusAsync();
            foreach (var unit in status.GetProperty("services").GetProperty(Service).GetProperty("units").EnumerateObject())
                fleet._machineOf[unit.Name] = unit.Value.GetProperty("machine").GetString()!;
            Assert.Equal(Units, fleet._machineOf.Keys.Order(StringComparer.Ordinal).ToArray());
            Assert.Equal(2, fleet.UnitsOn("a1").Count());
            foreach (var unit in Units) await File.WriteAllTextAsync(Path.Combine(fleet.DataOf(unit), "kept"), unit);
            TestFormulas.Write(fleet.Repository, Service, revision: 2);
            return fleet;
        }

        public HostProcess Node(string machine) => _nodes[machine];

        public IEnumerable<string> UnitsOn(string machine) => Units.Where(u => _machineOf[u] == machine);

        /// <summary>Starts the upgrade to revision 2 with every unit's upgrade-formula hook held, and waits until all four hooks began.</summary>
        /// <returns>With <paramref name="wait"/>, the running `upgrade-formula --wait` on the operator's host; else null.</returns>
        public async Task<HostProcess> StartHeldUpgradeAsync(bool wait = false)
        {
            await File.WriteAllTextAsync(HoldFile, "");
            HostProcess? waiter = null;
            if (wait)
            {
                waiter = _env.Operator.Start(InstalledTool.Command, ["upgrade-formula", "--wait", Service],
                    new Dictionary<string, string?> { ["ENSEMBLE_HOME"] = Path.Combine(_env.Operator.DataRoot, "home"), ["ENSEMBLE_ENVIRONMENT"] = null },
                    name: "upgrade-wait");
            }
            else
            {
                var upgrade = await _env.EnsembleAsync("upgrade-formula", Service);
                Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
            }
            foreach (var unit in Units)
                await Until(() => Trace(unit).Contains("upgrade-formula 2 begin"), TimeSpan.FromSeconds(60), $"{unit}'s upgrade-formula hook begun");
            return waiter!;
        }

        public void Release() => File.Delete(HoldFile);

        public bool AllUpgraded(JsonElement status)
        {
            var service = status.GetProperty("services").GetProperty(Service);
            return !service.GetProperty("upgrade-running").GetBoolean() && Units.All(u =>
            {
                var unit = service.GetProperty("units").GetProperty(u);
                return unit.GetProperty("formula").GetString() == "local:hello-2" && unit.GetProperty("state").GetString() == "running";
            });
        }

        public string DataOf(string unit)
        {
            var host = _env.Network[_machineOf[unit]];
            return Path.Combine(MultiHostEnvironment.DataDirectoryOf(host), "machines", host.Name, "units", unit.Replace('/', '-'), "data");
        }

        public IReadOnlyList<string> Trace(string unit) => TestFormulas.HookTrace(DataOf(unit));

        public void AssertDataKeptAndHookRanOnce()
        {
            foreach (var unit in Units)
            {
                Assert.Equal(unit, File.ReadAllText(Path.Combine(DataOf(unit), "kept")));
                var trace = Trace(unit);
                Assert.True(trace.Count(l => l == "upgrade-formula 2 end") == 1, $"{unit}'s upgrade-formula hook did not end exactly once:\n{string.Join('\n', trace)}");
                Assert.Equal("upgrade-formula 2 end", trace.Last(l => l.StartsWith("upgrade-formula", StringComparison.Ordinal)));
            }
        }
    }
}
