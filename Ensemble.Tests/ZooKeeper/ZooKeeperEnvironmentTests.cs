using System.Diagnostics;
using System.Text.Json;
using Ensemble.Coordination;
using Ensemble.Tests.Support;
using Ensemble.Topology;
using Ensemble.Units;
using Ensemble.ZooKeeper;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.ZooKeeper;

/// <summary>An agent killed with SIGKILL and started again within the session timeout keeps its ZooKeeper session.</summary>
[Collection(ZooKeeperCollection.Name)]
public sealed class AgentSessionResumeTests(ZooKeeperTestServer server) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-zk-agent-").FullName;
    private readonly List<Process> _agents = [];
    private readonly string _topologyRoot = "/resume-" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose()
    {
        foreach (var agent in _agents.Where(a => !a.HasExited)) agent.Kill(entireProcessTree: true);
        foreach (var agent in _agents) agent.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private async Task<Process> StartAgentAsync()
    {
        var ready = Path.Combine(_root, "ready.json");
        File.Delete(ready);
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Ensemble.Agent.dll"), "--data-dir", Path.Combine(_root, "data"),
            // Both roles: a node with the agent role alone joins an environment through a controller's join gate
            // (--join, --token); this test is about the agent's ZooKeeper session, which is the same either way.
            "--roles", "controller,agent", "--machine", "machine-7", "--zookeeper", server.ConnectionString, "--root", _topologyRoot, "--ready-file", ready,
        }) start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _agents.Add(process);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(File.Exists(ready) || process.HasExited), TimeSpan.FromSeconds(60), "the agent to start");
        Assert.False(process.HasExited, "the agent exited while starting");
        return process;
    }

    [Fact]
    public async Task The_presence_node_survives_a_SIGKILL_and_restart_with_the_same_owner()
    {
        await using var observer = await ZooKeeperCoordinationStore.ConnectAsync(new ZooKeeperOptions(server.ConnectionString, TimeSpan.FromSeconds(10)));
        var presence = $"{_topologyRoot}/agents/machine-7";
        var first = await StartAgentAsync();
        NodeStat? before = null;
        await LocalEnvironment.WaitUntilAsync(async () => (before = await observer.ExistsAsync(presence)) is not null,
            TimeSpan.FromSeconds(30), "the presence node");
        var deleted = new TaskCompletionSource();
        void Watch(WatchEvent e)
        {
            if (e.Type == WatchEventType.NodeDeleted) deleted.TrySetResult();
            else _ = observer.ExistsAsync(presence, Watch);
        }
        await observer.ExistsAsync(presence, Watch);

        first.Kill(); // SIGKILL: no shutdown, the session is left to live or expire
        await first.WaitForExitAsync();
        await StartAgentAsync();
        var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(UnitPaths.MachineDirectory(Path.Combine(_root, "data"), "machine-7"), "zookeeper-session.json")));
        Assert.Equal(before!.EphemeralOwner, saved.RootElement.GetProperty("SessionId").GetInt64());

        // The restarted agent announces its new address on the same node, in the same session.
        var after = await observer.ExistsAsync(presence);
        Assert.NotNull(after);
        Assert.Equal(before.EphemeralOwner, after!.EphemeralOwner);
        Assert.Equal(before.Czxid, after.Czxid);
        await LocalEnvironment.WaitUntilAsync(async () => (await observer.ExistsAsync(presence))!.Version > before.Version,
            TimeSpan.FromSeconds(30), "the restarted agent to update its presence");
        Assert.False(deleted.Task.IsCompleted, "the presence node disappeared");
    }
}

/// <summary>The ZooKeeper server an environment's agent is connected to stops mid-upgrade; the upgrade finishes.</summary>
public sealed class ZooKeeperFailoverUpgradeTests : EnvironmentTest, IClassFixture<ZooKeeperTestEnsemble>
{
    private readonly ZooKeeperTestEnsemble _ensemble;

    public ZooKeeperFailoverUpgradeTests(ZooKeeperTestEnsemble ensemble, ITestOutputHelper output) : base(output) => _ensemble = ensemble;

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { ZooKeeper = _ensemble.ConnectionString, Root = "/failover-" + Guid.NewGuid().ToString("N")[..8] };

    [Fact]
    public async Task An_upgrade_in_progress_finishes_when_the_agents_server_stops()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "db", 1);
        var units = await DeployAsync("db", 2);
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");
        TestFormulas.Write(Repository, "db", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("db"));
        await LocalEnvironment.WaitUntilAsync(async () =>
            TestFormulas.HookTrace(await DataDirAsync(units[0])).Contains("upgrade-formula 2 begin"), Deadline, "the upgrade hook");

        var agentSession = (RenewingZooKeeperStore)Env.MachineSession("m0");
        var sessionId = agentSession.SessionId;
        var connected = _ensemble.IndexOf(agentSession.Client.ConnectedServer);
        Assert.True(connected >= 0, $"connected to {agentSession.Client.ConnectedServer}");
        _ensemble.Stop(connected);
        try
        {
            File.Delete(Path.Combine(control, "hold-upgrade-formula"));
            await WaitForUnitsAsync(units, u => u.Formula == "local:db-2" && u.State == UnitPhase.Running, "both units on revision 2");
            await WaitForUpgradeToEndAsync("db");
            foreach (var unit in units) Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
            Assert.Equal(sessionId, agentSession.SessionId);
            Assert.NotEqual(connected, _ensemble.IndexOf(agentSession.Client.ConnectedServer));
        }
        finally
        {
            _ensemble.Start(connected);
        }
    }
}

/// <summary>What our client writes, an independent client (Debian's python3-kazoo) reads, and the reverse.</summary>
[Collection(ZooKeeperCollection.Name)]
public sealed class ZooKeeperInteroperabilityTests(ZooKeeperTestServer server)
{
    [Fact]
    public async Task Kazoo_reads_what_we_wrote_and_we_read_what_kazoo_wrote()
    {
        var root = "/interop-" + Guid.NewGuid().ToString("N")[..8];
        await using var client = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions(server.ConnectionString, TimeSpan.FromSeconds(10)));
        await client.CreateAsync(root, [], Acl.OpenUnsafe, Ensemble.ZooKeeper.CreateMode.Persistent);
        await client.CreateAsync(root + "/ours", "from ensemble ✓"u8.ToArray(), Acl.OpenUnsafe, Ensemble.ZooKeeper.CreateMode.Ephemeral);
        await client.MultiAsync([new Op.Create(root + "/batch", [1, 2, 3], Acl.OpenUnsafe, Ensemble.ZooKeeper.CreateMode.Persistent), new Op.SetData(root, "root data"u8.ToArray(), 0)]);

        var script = """
            import json, sys
            from kazoo.client import KazooClient
            zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=15)
            root = sys.argv[2]
            data, stat = zk.get(root + "/ours")
            batch, _ = zk.get(root + "/batch")
            rootdata, rootstat = zk.get(root)
            zk.create(root + "/theirs", "from kazoo".encode(), ephemeral=False)
            print(json.dumps({"ours": data.decode("utf-8"), "owner": stat.ephemeralOwner, "batch": list(batch),
                              "root": rootdata.decode(), "rootVersion": rootstat.version, "children": sorted(zk.get_children(root))}))
            zk.stop()
            """;
        var start = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(server.ConnectionString);
        start.ArgumentList.Add(root);
        using var python = Process.Start(start)!;
        var stdout = python.StandardOutput.ReadToEndAsync();
        var stderr = python.StandardError.ReadToEndAsync();
        await python.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(python.ExitCode == 0, $"kazoo failed (is python3-kazoo installed?): {await stderr}");

        var seen = JsonDocument.Parse(await stdout).RootElement;
        Assert.Equal("from ensemble ✓", seen.GetProperty("ours").GetString());
        Assert.Equal(client.SessionId, seen.GetProperty("owner").GetInt64());
        Assert.Equal([1, 2, 3], seen.GetProperty("batch").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("root data", seen.GetProperty("root").GetString());
        Assert.Equal(1, seen.GetProperty("rootVersion").GetInt32());
        Assert.Equal(["batch", "ours", "theirs"], seen.GetProperty("children").EnumerateArray().Select(e => e.GetString()));

        var (theirs, stat) = await client.GetDataAsync(root + "/theirs");
        Assert.Equal("from kazoo", System.Text.Encoding.UTF8.GetString(theirs));
        Assert.Equal(0, stat.EphemeralOwner);
    }
}
