using System.Text;
using Ensemble.Coordination;
using Xunit;

namespace Ensemble.Tests.Coordination;

/// <summary>What only the embedded backend promises: durability, its files, its lock, WriteCount.</summary>
public sealed class EmbeddedCoordinationServerTests : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly List<TempDirectory> extraDirs = [];
    private string Dir => temp.Path;

    public void Dispose()
    {
        temp.Dispose();
        foreach (var d in extraDirs) d.Dispose();
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Every node below (and including) <paramref name="root"/>: path, data and stat.</summary>
    private static async Task<List<(string Path, string Data, NodeStat Stat)>> DumpAsync(ICoordinationStore store, string root = "/")
    {
        var result = new List<(string Path, string Data, NodeStat Stat)>();
        async Task Walk(string path)
        {
            var data = await store.GetDataAsync(path);
            result.Add((path, Convert.ToHexString(data.Data), data.Stat));
            foreach (var child in (await store.GetChildrenAsync(path)).Children)
                await Walk(path == "/" ? "/" + child : path + "/" + child);
        }
        await Walk(root);
        return result;
    }

    private static async Task<List<(string Path, string Data, NodeStat Stat)>> DumpServerAsync(EmbeddedCoordinationServer server)
    {
        var session = server.Connect();
        try { return await DumpAsync(session); }
        finally { await session.DisposeAsync(); }
    }

    private string NewestLog() => Directory.GetFiles(Dir, "log.*").Where(f => !f.EndsWith(".discarded")).Order(StringComparer.Ordinal).Last();

    private static async Task BuildSampleTreeAsync(ICoordinationStore s)
    {
        await s.CreateAsync("/app", B("root"));
        await s.CreateAsync("/app/config", Enumerable.Range(0, 256).Select(i => (byte)i).ToArray());
        await s.CreateAsync("/app/empty", []);
        await s.SetDataAsync("/app/config", B("v2"));
        await s.SetDataAsync("/app/config", B("v3"), 1);
        await s.CreateAsync("/app/queue", []);
        for (int i = 0; i < 3; i++)
            await s.CreateAsync("/app/queue/item-", B("i" + i), CreateMode.PersistentSequential);
        await s.DeleteAsync("/app/queue/item-0000000001");
        await s.CreateAsync("/app/gone", []);
        await s.DeleteAsync("/app/gone");
        await s.MultiAsync(
        [
            new StoreOp.Create("/app/m", B("m")),
            new StoreOp.Create("/app/m/child", []),
            new StoreOp.SetData("/app", B("root2")),
        ]);
    }

    [Fact]
    public async Task Persistent_state_survives_Dispose_and_Open()
    {
        List<(string Path, string Data, NodeStat Stat)> before;
        long zxid;
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            await BuildSampleTreeAsync(s);
            before = await DumpAsync(s);
            zxid = server.LastZxid;
        }

        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            Assert.Equal(zxid, server.LastZxid);
            Assert.Equal(before, await DumpServerAsync(server));
            var s = server.Connect();
            // counters continue where they were
            Assert.Equal("/app/queue/item-0000000004", await s.CreateAsync("/app/queue/item-", [], CreateMode.PersistentSequential));
            var stat = await s.SetDataAsync("/app/empty", [1]);
            Assert.True(stat.Mzxid > zxid);
        }
    }

    [Fact]
    public async Task Open_creates_a_missing_directory()
    {
        var nested = Path.Combine(Dir, "a", "b");
        using var server = EmbeddedCoordinationServer.Open(nested);
        Assert.True(Directory.Exists(nested));
        Assert.Equal(Path.GetFullPath(nested), server.DataDirectory);
        Assert.Single(await DumpServerAsync(server)); // just the root
    }

    [Fact]
    public async Task A_torn_tail_is_cut_off_and_earlier_data_kept()
    {
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            await s.CreateAsync("/a", B("alpha"));
            await s.SetDataAsync("/a", B("beta"));
        }
        var log = NewestLog();
        long intact = new FileInfo(log).Length;
        using (var f = new FileStream(log, FileMode.Append))
            f.Write([0x40, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3]); // a header promising more than there is

        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            Assert.Equal(intact, new FileInfo(log).Length);
            var s = server.Connect();
            var a = await s.GetDataAsync("/a");
            Assert.Equal(B("beta"), a.Data);
            Assert.Equal(1, a.Stat.Version);
            await s.CreateAsync("/b", B("after"));
        }

        // the write after the repair landed on a clean tail and is replayed
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            Assert.Equal(B("beta"), (await s.GetDataAsync("/a")).Data);
            Assert.Equal(B("after"), (await s.GetDataAsync("/b")).Data);
        }
    }

    [Fact]
    public async Task A_half_written_or_corrupt_last_record_is_dropped()
    {
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            await s.CreateAsync("/kept", B("1"));
            await s.CreateAsync("/lost", B("2"));
        }
        var log = NewestLog();
        using (var f = new FileStream(log, FileMode.Open))
            f.SetLength(f.Length - 3);

        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            Assert.NotNull(await s.ExistsAsync("/kept"));
            Assert.Null(await s.ExistsAsync("/lost"));
            await s.CreateAsync("/third", B("3"));
        }

        // flip a byte inside the last record's payload: its checksum no longer matches
        var bytes = File.ReadAllBytes(log);
        bytes[^2] ^= 0xFF;
        File.WriteAllBytes(log, bytes);
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            Assert.NotNull(await s.ExistsAsync("/kept"));
            Assert.Null(await s.ExistsAsync("/third"));
        }
    }

    [Fact]
    public async Task Snapshot_plus_log_replay_restores_everything_past_the_threshold()
    {
        var options = new EmbeddedStoreOptions { SnapshotThreshold = 10 };
        List<(string Path, string Data, NodeStat Stat)> before;
        using (var server = EmbeddedCoordinationServer.Open(Dir, options))
        {
            var s = server.Connect();
            await BuildSampleTreeAsync(s);
            await s.CreateAsync("/counter", []);
            for (int i = 0; i < 57; i++)
            {
                await s.SetDataAsync("/counter", B(i.ToString()));
                if (i % 5 == 0) await s.CreateAsync("/counter/c-", B("x" + i), CreateMode.PersistentSequential);
            }
            await s.CreateAsync("/eph", [], CreateMode.Ephemeral); // closing the session deletes it again
            before = await DumpAsync(s);
            before.RemoveAll(n => n.Path == "/eph");
        }

        Assert.NotEmpty(Directory.GetFiles(Dir, "snapshot.*"));
        Assert.Empty(Directory.GetFiles(Dir, "*.tmp"));
        Assert.InRange(Directory.GetFiles(Dir, "log.*").Length, 1, 2); // older logs were folded into snapshots

        using (var server = EmbeddedCoordinationServer.Open(Dir, options))
        {
            var after = await DumpServerAsync(server);
            Assert.Equal(before.Select(n => n.Path), after.Select(n => n.Path));
            // the root's stat reflects /eph's create+delete; compare everything else exactly
            Assert.Equal(before.Skip(1), after.Skip(1));
            var s = server.Connect();
            for (int i = 0; i < 25; i++)
                await s.SetDataAsync("/counter", B("again" + i));
        }

        using (var server = EmbeddedCoordinationServer.Open(Dir, EmbeddedStoreOptions.Default))
        {
            var s = server.Connect();
            Assert.Equal(B("again24"), (await s.GetDataAsync("/counter")).Data);
            Assert.Equal(57 + 25, (await s.ExistsAsync("/counter"))!.Version);
        }
    }

    [Fact]
    public async Task Ephemeral_nodes_of_a_killed_process_are_gone_after_Open_and_parent_counters_stay_consistent()
    {
        var crashImage = new TempDirectory();
        extraDirs.Add(crashImage);
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var s = server.Connect();
            await s.CreateAsync("/p", []);
            await s.CreateAsync("/p/e", B("eph"), CreateMode.Ephemeral);            // cversion 1
            await s.CreateAsync("/p/s-", [], CreateMode.EphemeralSequential);       // 2: /p/s-0000000001
            await s.CreateAsync("/p/q", B("persistent"));                           // 3
            // What a killed process leaves behind: the files as they are now, sessions still open.
            foreach (var file in Directory.GetFiles(Dir).Where(f => Path.GetFileName(f) != "LOCK"))
                File.Copy(file, Path.Combine(crashImage.Path, Path.GetFileName(file)));
        }

        List<(string Path, string Data, NodeStat Stat)> recovered;
        using (var server = EmbeddedCoordinationServer.Open(crashImage.Path))
        {
            var s = server.Connect();
            Assert.Null(await s.ExistsAsync("/p/e"));
            Assert.Null(await s.ExistsAsync("/p/s-0000000001"));
            var p = await s.GetChildrenAsync("/p");
            Assert.Equal(["q"], p.Children);
            Assert.Equal(1, p.Stat.NumChildren);
            Assert.Equal(5, p.Stat.Cversion); // 3 creates + the 2 deletions of the expired session
            Assert.Equal(server.LastZxid, p.Stat.Pzxid);
            Assert.Equal(B("persistent"), (await s.GetDataAsync("/p/q")).Data);
            recovered = await DumpAsync(s);
        }

        using (var server = EmbeddedCoordinationServer.Open(crashImage.Path))
        {
            Assert.Equal(recovered, await DumpServerAsync(server));
            var s = server.Connect();
            Assert.Equal("/p/n-0000000005", await s.CreateAsync("/p/n-", [], CreateMode.PersistentSequential));
        }
    }

    [Fact]
    public async Task Leftovers_of_an_interrupted_snapshot_are_ignored_and_removed()
    {
        using (var server = EmbeddedCoordinationServer.Open(Dir))
            await server.Connect().CreateAsync("/a", B("1"));
        var leftover = Path.Combine(Dir, "snapshot.00000000000000ff.tmp");
        File.WriteAllBytes(leftover, [1, 2, 3]);
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            Assert.False(File.Exists(leftover));
            Assert.Equal(B("1"), (await server.Connect().GetDataAsync("/a")).Data);
        }
    }

    [Fact]
    public void A_second_Open_of_the_same_directory_is_refused()
    {
        using (var server = EmbeddedCoordinationServer.Open(Dir))
        {
            var e = Assert.Throws<IOException>(() => EmbeddedCoordinationServer.Open(Dir));
            Assert.Contains("already in use", e.Message);
            Assert.Contains(Path.GetFullPath(Dir), e.Message);
        }
        using (EmbeddedCoordinationServer.Open(Dir)) { } // released on Dispose
    }

    [Fact]
    public async Task WriteCount_counts_committed_writes_and_a_multi_as_one()
    {
        using var server = EmbeddedCoordinationServer.Open(Dir);
        var s = server.Connect();
        Assert.Equal(0, server.WriteCount);
        await s.CreateAsync("/a", []);
        await s.SetDataAsync("/a", [1]);
        await s.CreateAsync("/b", []);
        await s.DeleteAsync("/b");
        Assert.Equal(4, server.WriteCount);

        await s.MultiAsync(
        [
            new StoreOp.Create("/c", []),
            new StoreOp.Create("/c/d", []),
            new StoreOp.SetData("/a", [2]),
            new StoreOp.Check("/a", 2),
        ]);
        Assert.Equal(5, server.WriteCount);

        long zxid = server.LastZxid;
        await Assert.ThrowsAsync<NodeExistsException>(() => s.CreateAsync("/a", []));
        await Assert.ThrowsAsync<BadVersionException>(() => s.MultiAsync([new StoreOp.Delete("/c/d"), new StoreOp.Check("/a", 0)]));
        await s.GetDataAsync("/a");
        await s.GetChildrenAsync("/");
        await s.ExistsAsync("/zzz");
        Assert.Equal(5, server.WriteCount);
        Assert.Equal(zxid, server.LastZxid);
        Assert.NotNull(await s.ExistsAsync("/c/d"));
    }

    [Fact]
    public async Task Fsync_mode_is_durable_too()
    {
        var options = new EmbeddedStoreOptions { Fsync = true };
        using (var server = EmbeddedCoordinationServer.Open(Dir, options))
            await server.Connect().CreateAsync("/synced", B("yes"));
        using (var server = EmbeddedCoordinationServer.Open(Dir, options))
            Assert.Equal(B("yes"), (await server.Connect().GetDataAsync("/synced")).Data);
    }

    [Fact]
    public async Task Watches_are_dropped_with_their_session()
    {
        using var server = EmbeddedCoordinationServer.Open(Dir);
        var watcher = server.Connect();
        await watcher.CreateAsync("/w", []);
        await watcher.GetDataAsync("/w", _ => { });
        await watcher.GetChildrenAsync("/w", _ => { });
        await watcher.ExistsAsync("/missing", _ => { });
        Assert.Equal(3, server.ActiveWatchCount);
        await watcher.DisposeAsync();
        Assert.Equal(0, server.ActiveWatchCount);
        Assert.Equal(0, server.SessionCount);
    }

    [Fact]
    public async Task Fired_watches_are_removed()
    {
        using var server = EmbeddedCoordinationServer.Open(Dir);
        var s = server.Connect();
        await s.CreateAsync("/w", []);
        var fired = new TaskCompletionSource<WatchEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        await s.GetDataAsync("/w", e => fired.TrySetResult(e));
        Assert.Equal(1, server.ActiveWatchCount);
        await s.SetDataAsync("/w", [1]);
        Assert.Equal(0, server.ActiveWatchCount);
        Assert.Equal(WatchEventType.NodeDataChanged, (await fired.Task.WaitAsync(TimeSpan.FromSeconds(15))).Type);
    }

    [Fact]
    public async Task A_throwing_watcher_is_reported_to_the_options_hook()
    {
        var reported = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = EmbeddedCoordinationServer.Open(Dir, new EmbeddedStoreOptions { OnWatcherException = (_, e) => reported.TrySetResult(e) });
        var s = server.Connect();
        await s.CreateAsync("/w", []);
        await s.GetDataAsync("/w", _ => throw new InvalidOperationException("bad watcher"));
        await s.SetDataAsync("/w", [1]);
        Assert.Equal("bad watcher", (await reported.Task.WaitAsync(TimeSpan.FromSeconds(15))).Message);
    }

    [Fact]
    public async Task Disposing_the_server_closes_its_sessions()
    {
        var server = EmbeddedCoordinationServer.Open(Dir);
        var s = server.Connect();
        await s.CreateAsync("/x", []);
        server.Dispose();
        var e = await Assert.ThrowsAnyAsync<StoreException>(() => s.GetDataAsync("/x"));
        Assert.Equal(StoreErrorCode.SessionExpired, e.Code);
        Assert.Throws<ObjectDisposedException>(() => server.Connect());
        await s.DisposeAsync(); // harmless afterwards
        server.Dispose();       // idempotent
    }

    [Fact]
    public async Task Concurrent_sessions_get_unique_sequential_names_and_the_result_is_durable()
    {
        const int sessionCount = 8, perSession = 40;
        List<(string Path, string Data, NodeStat Stat)> before;
        using (var server = EmbeddedCoordinationServer.Open(Dir, new EmbeddedStoreOptions { SnapshotThreshold = 50 }))
        {
            var setup = server.Connect();
            await setup.CreateAsync("/q", []);
            var names = await Task.WhenAll(Enumerable.Range(0, sessionCount).Select(i => Task.Run(async () =>
            {
                var s = server.Connect();
                var mine = new List<string>();
                for (int j = 0; j < perSession; j++)
                    mine.Add(await s.CreateAsync("/q/n-", B($"{i}:{j}"), CreateMode.PersistentSequential));
                return mine;
            })));
            var all = names.SelectMany(n => n).ToList();
            Assert.Equal(sessionCount * perSession, all.Distinct().Count());
            var q = await setup.GetChildrenAsync("/q");
            Assert.Equal(sessionCount * perSession, q.Stat.NumChildren);
            Assert.Equal(sessionCount * perSession, q.Stat.Cversion);
            Assert.Equal(sessionCount * perSession + 1, server.WriteCount);
            before = await DumpAsync(setup);
        }
        using (var server = EmbeddedCoordinationServer.Open(Dir))
            Assert.Equal(before, await DumpServerAsync(server));
    }
}
