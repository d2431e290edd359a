using System.Diagnostics;
using System.Globalization;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Ensemble.TestKit.MultiHost;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>The multi-host fixture: hosts that reach each other and nothing else, private data roots, cables pulled and
/// plugged, ZooKeeper across hosts, and nothing left behind however a test ends.</summary>
public sealed class SimulatedNetworkTests(ITestOutputHelper output)
{
    // Debian's python3, which has kazoo; the one first on PATH may be another.
    private const string Python = "/usr/bin/python3";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private const string Listener = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
        print("listening", flush=True)
        while True:
            c, _ = s.accept(); c.sendall(("hello from " + socket.gethostname() + "\n").encode()); c.close()
        """;

    private static HostProcess StartListener(SimulatedHost host, int port = 7000) =>
        host.Start(Python, ["-c", Listener, host.Address, port.ToString(CultureInfo.InvariantCulture)], name: "listener");

    private static Task<HostCommandResult> ReadFromAsync(SimulatedHost from, string address, int port = 7000) =>
        from.RunAsync("timeout", ["3", "bash", "-c", "exec 3<>\"/dev/tcp/$0/$1\" && cat <&3", address, port.ToString(CultureInfo.InvariantCulture)]);

    [Fact]
    public async Task Hosts_reach_each_other_by_address_and_by_name_and_nothing_outside_their_network()
    {
        var clock = Stopwatch.StartNew();
        await using var network = await SimulatedNetwork.CreateAsync();
        var created = clock.Elapsed;
        var (a, b) = (await network.AddHostAsync("a"), await network.AddHostAsync("b"));
        output.WriteLine($"network {network.Id} ({network.Subnet}) created in {created.TotalMilliseconds:F0} ms, two hosts added in {(clock.Elapsed - created).TotalMilliseconds:F0} ms");
        Assert.StartsWith(network.Subnet[..^4], a.Address, StringComparison.Ordinal);
        await StartListener(b).WaitForOutputAsync("listening", Deadline);

        Assert.Equal("hello from b", (await ReadFromAsync(a, b.Address)).Stdout.Trim());
        Assert.Equal("hello from b", (await ReadFromAsync(a, "b")).Stdout.Trim());
        Assert.Equal("a", (await a.RunAsync("hostname", [])).Stdout.Trim());

        // The only route is the network's own /24: no default route, in any table, for either IP version.
        var routes = await a.RunAsync("ip", ["route", "show"]);
        Assert.Equal(new[] { $"{network.Subnet[..^3]}/24 dev eth0 proto kernel scope link src {a.Address}" }, routes.Stdout.Trim().Split('\n').Select(l => l.Trim()));
        foreach (var family in new[] { "-4", "-6" })
            Assert.DoesNotContain("default", (await a.RunAsync("ip", [family, "route", "show", "table", "all"])).Stdout, StringComparison.Ordinal);

        // The machine's own addresses are outside: the kernel refuses before a packet is sent.
        var outside = NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address)
            .Where(ip => ip.AddressFamily == AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(ip)).ToList();
        Assert.NotEmpty(outside);
        foreach (var address in outside)
        {
            var attempt = await ReadFromAsync(a, address.ToString(), 22);
            Assert.NotEqual(0, attempt.ExitCode);
            Assert.Contains("Network is unreachable", attempt.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_host_sees_its_data_root_and_every_other_host_sees_that_directory_empty()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var (a, b) = (await network.AddHostAsync("a"), await network.AddHostAsync("b"));

        var write = await a.RunAsync("sh", ["-c", "echo written-on-a > note"]);
        Assert.Equal(0, write.ExitCode);
        Assert.Equal("written-on-a\n", await File.ReadAllTextAsync(Path.Combine(a.DataRoot, "note")));
        Assert.Equal("written-on-a", (await a.RunAsync("cat", [Path.Combine(a.DataRoot, "note")])).Stdout.Trim());

        var seenFromB = await b.RunAsync("ls", ["-A", a.DataRoot]);
        Assert.Equal(0, seenFromB.ExitCode);
        Assert.Equal("", seenFromB.Stdout);
        Assert.NotEqual(0, (await b.RunAsync("cat", [Path.Combine(a.DataRoot, "note")])).ExitCode);

        // What b writes where it sees a's directory stays in b's throwaway view.
        Assert.Equal(0, (await b.RunAsync("sh", ["-c", "echo from-b > \"$0/planted\"", a.DataRoot])).ExitCode);
        Assert.False(File.Exists(Path.Combine(a.DataRoot, "planted")));
        Assert.Equal("note", (await a.RunAsync("ls", ["-A", a.DataRoot])).Stdout.Split('\n').Single(n => n is "note" or "planted"));

        // A host added later is hidden from the hosts already there, and they from it.
        var c = await network.AddHostAsync("c");
        await File.WriteAllTextAsync(Path.Combine(b.DataRoot, "b-only"), "b");
        Assert.Equal("", (await c.RunAsync("ls", ["-A", b.DataRoot])).Stdout);
        Assert.Equal("", (await c.RunAsync("ls", ["-A", a.DataRoot])).Stdout);
        Assert.Contains("b-only", (await b.RunAsync("ls", ["-A", b.DataRoot])).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cut_off_host_is_unreachable_both_ways_until_it_is_healed()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var (a, b) = (await network.AddHostAsync("a"), await network.AddHostAsync("b"));
        await Task.WhenAll(StartListener(a).WaitForOutputAsync("listening", Deadline), StartListener(b).WaitForOutputAsync("listening", Deadline));
        Assert.True(await a.CanConnectAsync(b.Address, 7000));

        await b.CutOffAsync();
        Assert.True(b.IsCutOff);
        Assert.False(await a.CanConnectAsync(b.Address, 7000, TimeSpan.FromSeconds(1)));
        Assert.False(await b.CanConnectAsync(a.Address, 7000, TimeSpan.FromSeconds(1)));
        // A cut-off host still talks to itself.
        Assert.True(await b.CanConnectAsync(b.Address, 7000));

        await b.HealAsync();
        Assert.False(b.IsCutOff);
        await a.WaitUntilReachableAsync(b.Address, 7000, Deadline);
        await b.WaitUntilReachableAsync(a.Address, 7000, Deadline);
        Assert.Equal("hello from b", (await ReadFromAsync(a, b.Address)).Stdout.Trim());
    }

    [Fact]
    public async Task Two_hosts_cut_off_from_each_other_still_reach_every_other_host_until_reconnected()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var (a, b, c) = (await network.AddHostAsync("a"), await network.AddHostAsync("b"), await network.AddHostAsync("c"));
        await Task.WhenAll(StartListener(a).WaitForOutputAsync("listening", Deadline), StartListener(b).WaitForOutputAsync("listening", Deadline),
            StartListener(c).WaitForOutputAsync("listening", Deadline));

        await a.CutOffFromAsync(b);
        Assert.False(await a.CanConnectAsync(b.Address, 7000, TimeSpan.FromSeconds(1)));
        Assert.False(await b.CanConnectAsync(a.Address, 7000, TimeSpan.FromSeconds(1)));
        Assert.True(await a.CanConnectAsync(c.Address, 7000));
        Assert.True(await b.CanConnectAsync(c.Address, 7000));
        Assert.True(await c.CanConnectAsync(a.Address, 7000));

        await a.ReconnectToAsync(b);
        await a.WaitUntilReachableAsync(b.Address, 7000, Deadline);
        await b.WaitUntilReachableAsync(a.Address, 7000, Deadline);
    }

    private const string Kazoo = """
        import sys
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=10)
        if sys.argv[2] == "write":
            zk.ensure_path("/multihost"); zk.set("/multihost", sys.argv[3].encode())
        print(zk.get("/multihost")[0].decode()); zk.stop()
        """;

    [Fact]
    public async Task A_ZooKeeper_server_on_one_host_serves_clients_on_the_others_and_keeps_its_data_over_a_restart()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var (zkHost, a, b) = (await network.AddHostAsync("zk"), await network.AddHostAsync("a"), await network.AddHostAsync("b"));
        var clock = Stopwatch.StartNew();
        var zk = await zkHost.StartZooKeeperAsync();
        output.WriteLine($"ZooKeeper served on {zk.ConnectionString} after {clock.ElapsedMilliseconds} ms");
        Assert.Equal($"{zkHost.Address}:2181", zk.ConnectionString);

        var written = await a.RunAsync(Python, ["-c", Kazoo, zk.ConnectionString, "write", "from a"]);
        Assert.True(written.ExitCode == 0, written.ToString());
        var read = await b.RunAsync(Python, ["-c", Kazoo, zk.ConnectionString, "read"]);
        Assert.True(read.ExitCode == 0, read.ToString());
        Assert.Equal("from a", read.Stdout.Trim());
        Assert.True(Directory.EnumerateFiles(Path.Combine(zk.Directory, "data"), "*", SearchOption.AllDirectories).Any());

        await zk.KillAsync();
        Assert.False(zk.IsRunning);
        Assert.False(await b.CanConnectAsync(zkHost.Address, 2181));
        await zk.StartAsync();
        read = await b.RunAsync(Python, ["-c", Kazoo, zk.ConnectionString, "read"]);
        Assert.Equal("from a", read.Stdout.Trim());
    }

    [Fact]
    public async Task A_started_process_logs_on_its_host_and_ends_by_kill_terminate_or_itself()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var a = await network.AddHostAsync("a");

        var parent = a.Start("sh", ["-c", "echo started; sleep 600 & echo child $!; wait"], name: "parent");
        var child = int.Parse((await parent.WaitForOutputAsync("child ", Deadline)).Split(' ')[1], CultureInfo.InvariantCulture);
        Assert.StartsWith(a.LogDirectory, parent.LogPath, StringComparison.Ordinal);
        Assert.Contains("started", parent.ReadLog(), StringComparison.Ordinal);
        parent.Kill();
        Assert.Equal(137, await parent.WaitForExitAsync(Deadline));
        await Until(() => !Alive(child), "the killed process's child to be gone");

        // kill -9 of the process alone, as of an agent node: what it started lives on until the network goes.
        var agent = a.Start("sh", ["-c", "sleep 600 & echo child $!; wait"], name: "agent");
        var orphan = int.Parse((await agent.WaitForOutputAsync("child ", Deadline)).Split(' ')[1], CultureInfo.InvariantCulture);
        agent.Kill(entireTree: false);
        Assert.Equal(137, await agent.WaitForExitAsync(Deadline));
        Assert.True(Alive(orphan));

        var sleeper = a.Start("sleep", ["600"]);
        sleeper.Terminate();
        Assert.Equal(143, await sleeper.WaitForExitAsync(Deadline));

        var quitter = a.Start("sh", ["-c", "echo bye; exit 3"]);
        var early = await Assert.ThrowsAsync<InvalidOperationException>(() => quitter.WaitForOutputAsync("never printed", Deadline));
        Assert.Contains("exited with 3", early.Message, StringComparison.Ordinal);
        Assert.Contains("bye", early.Message, StringComparison.Ordinal);
        Assert.Equal(3, quitter.ExitCode);

        var slow = await Assert.ThrowsAsync<TimeoutException>(() => a.RunAsync("sh", ["-c", "echo $$ > slow.pid; exec sleep 600"], timeout: TimeSpan.FromSeconds(1)));
        Assert.Contains("'sh -c echo $$ > slow.pid; exec sleep 600' on a did not finish within", slow.Message, StringComparison.Ordinal);
        var slowPid = int.Parse((await File.ReadAllTextAsync(Path.Combine(a.DataRoot, "slow.pid"))).Trim(), CultureInfo.InvariantCulture);
        await Until(() => !Alive(slowPid), "the command killed at its deadline to be gone");

        var orphanStart = ProcessTree.StartTime(orphan);
        await network.DisposeAsync();
        Assert.False(ProcessTree.IsAlive(orphan, orphanStart));
    }

    [Fact]
    public async Task Dispose_leaves_no_namespace_link_mount_directory_or_process()
    {
        var clock = Stopwatch.StartNew();
        var network = await SimulatedNetwork.CreateAsync();
        var trace = await PopulateAsync(network);
        Assert.DoesNotContain(network.Id, await RootLinksAsync(), StringComparison.Ordinal);
        Assert.Contains($"/run/netns/{network.Id}.a", await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
        output.WriteLine($"created with 3 hosts and 4 processes in {clock.ElapsedMilliseconds} ms");

        clock.Restart();
        await network.DisposeAsync();
        output.WriteLine($"disposed in {clock.ElapsedMilliseconds} ms");
        await AssertNothingLeftAsync(network, trace);
        await network.DisposeAsync();
    }

    [Fact]
    public async Task A_test_that_throws_midway_still_leaves_nothing_behind()
    {
        SimulatedNetwork? network = null;
        Trace? trace = null;
        async Task FailingTest()
        {
            await using var n = await SimulatedNetwork.CreateAsync();
            network = n;
            trace = await PopulateAsync(n);
            throw new InvalidOperationException("the test failed here");
        }

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(FailingTest);
        Assert.Equal("the test failed here", failure.Message);
        await AssertNothingLeftAsync(network!, trace!);
    }

    [Fact]
    public async Task When_the_test_process_dies_the_watchdog_removes_its_network()
    {
        var network = await SimulatedNetwork.CreateAsync();
        var trace = await PopulateAsync(network);
        Assert.True(Alive(network.WatchdogPid!.Value));

        network.AbandonAsIfKilled();
        await Until(() => !Alive(trace.Watchdog.Pid, trace.Watchdog.Start), "the watchdog to finish");
        await AssertNothingLeftAsync(network, trace);
    }

    [Fact]
    public async Task Leftovers_of_dead_test_processes_are_swept_when_a_network_is_created_and_live_networks_are_not()
    {
        await using var live = await SimulatedNetwork.CreateAsync();
        var liveHost = await live.AddHostAsync("a");

        // One run whose pid is gone, one whose pid now belongs to another process (this one, started later).
        var vacant = Enumerable.Range(1000, 30_000).Reverse().First(pid => !Directory.Exists($"/proc/{pid}"));
        string[] dead = [$"emh.{vacant}.1.199-1", $"emh.{Environment.ProcessId}.1.199-2"];
        var sleepers = new List<Process>();
        foreach (var id in dead)
        {
            await Ip("netns", "add", id + ".switch");
            await Ip("netns", "add", id + ".x");
            var sleeper = new ProcessStartInfo("ip") { UseShellExecute = false };
            foreach (var arg in new[] { "netns", "exec", id + ".x", "sleep", "600" }) sleeper.ArgumentList.Add(arg);
            sleepers.Add(Process.Start(sleeper)!);
            Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), id, "hosts", "x"));
        }
        await Until(() => sleepers.All(s => File.Exists($"/proc/{s.Id}/ns/net") && ReadLink($"/proc/{s.Id}/ns/net") != ReadLink("/proc/self/ns/net")),
            "the leftover processes to be in their namespaces");

        await using var fresh = await SimulatedNetwork.CreateAsync();

        var namespaces = await Ip("netns", "list");
        foreach (var id in dead)
        {
            Assert.DoesNotContain(id, namespaces, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), id)));
        }
        foreach (var sleeper in sleepers)
        {
            await sleeper.WaitForExitAsync().WaitAsync(Deadline);
            Assert.Equal(137, sleeper.ExitCode);
        }
        Assert.Contains(liveHost.Namespace, namespaces, StringComparison.Ordinal);
        Assert.Equal("a", (await liveHost.RunAsync("hostname", [])).Stdout.Trim());
    }

    [Fact]
    public void Without_root_or_iproute2_the_fixture_names_what_is_missing_in_one_sentence()
    {
        Assert.Null(Tools.MissingRequirement(isRoot: true, path: null));
        Assert.Equal("The multi-host fixture needs root to create network namespaces and mounts: run the tests as root.",
            Tools.MissingRequirement(isRoot: false, path: null));
        Assert.Equal("The multi-host fixture needs the 'ip' command of iproute2: install it with 'apt-get install -y iproute2'.",
            Tools.MissingRequirement(isRoot: true, path: "/nonexistent"));
    }

    private sealed record Trace(IReadOnlyList<(int Pid, long Start)> Processes, (int Pid, long Start) Watchdog, IReadOnlyList<string> Namespaces);

    /// <summary>Three hosts, a listener, a process tree, a process that ignores SIGTERM: all that dispose must remove.</summary>
    private static async Task<Trace> PopulateAsync(SimulatedNetwork network)
    {
        var (a, b, _) = (await network.AddHostAsync("a"), await network.AddHostAsync("b"), await network.AddHostAsync("c"));
        await StartListener(b).WaitForOutputAsync("listening", Deadline);
        var tree = a.Start("sh", ["-c", "sleep 600 & sleep 600 & echo forked; wait"]);
        await tree.WaitForOutputAsync("forked", Deadline);
        var stubborn = b.Start("sh", ["-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"]);
        await stubborn.WaitForOutputAsync("trapped", Deadline);
        Assert.Equal("hello from b", (await ReadFromAsync(a, b.Address)).Stdout.Trim());

        var namespaces = network.Hosts.Select(h => h.Namespace).Append(network.SwitchNamespace).ToList();
        var pids = new List<(int, long)>();
        foreach (var ns in namespaces)
            foreach (var pid in (await Ip("netns", "pids", ns)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                pids.Add((int.Parse(pid, CultureInfo.InvariantCulture), ProcessTree.StartTime(int.Parse(pid, CultureInfo.InvariantCulture))));
        Assert.True(pids.Count >= 5, $"expected the listener, the tree of three and the stubborn loop; found {pids.Count}");
        var watchdog = network.WatchdogPid!.Value;
        return new Trace(pids, (watchdog, ProcessTree.StartTime(watchdog)), namespaces);
    }

    private static async Task AssertNothingLeftAsync(SimulatedNetwork network, Trace trace)
    {
        Assert.DoesNotContain(network.Id, await Ip("netns", "list"), StringComparison.Ordinal);
        Assert.DoesNotContain(network.Id, await RootLinksAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(network.Id, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.DoesNotContain(network.Directory, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.False(Directory.Exists(network.Directory), $"{network.Directory} is left");
        // Processes the kernel is still tearing down count as left only until the deadline.
        await Until(() => trace.Processes.Append(trace.Watchdog).All(p => !ProcessTree.IsAlive(p.Pid, p.Start)), "every process of the network to be gone");
        foreach (var ns in trace.Namespaces) Assert.False(File.Exists("/run/netns/" + ns));
    }

    private static Task<string> RootLinksAsync() => Ip("-o", "link", "show");

    private static async Task<string> Ip(params string[] arguments)
    {
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var ip = Process.Start(start)!;
        var stdout = await ip.StandardOutput.ReadToEndAsync();
        var stderr = await ip.StandardError.ReadToEndAsync();
        await ip.WaitForExitAsync();
        Assert.True(ip.ExitCode == 0, $"ip {string.Join(' ', arguments)}: {stderr}");
        return stdout;
    }

    private static bool Alive(int pid) => ProcessTree.IsAlive(pid, ProcessTree.StartTime(pid));
    private static bool Alive(int pid, long start) => ProcessTree.IsAlive(pid, start);
    private static string? ReadLink(string path) => new FileInfo(path).LinkTarget;

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Waited {Deadline} for {what}.");
            await Task.Delay(50);
        }
    }
}
