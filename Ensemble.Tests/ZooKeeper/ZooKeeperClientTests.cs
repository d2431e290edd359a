using Xunit;
using Ensemble.ZooKeeper;

namespace Ensemble.Tests.ZooKeeper;

[Collection(ZooKeeperCollection.Name)]
public sealed class ZooKeeperClientTests(ZooKeeperTestServer server)
{
    private static readonly IReadOnlyList<Acl> Open = Acl.OpenUnsafe;

    [Fact]
    public async Task Crud_versions_and_error_codes()
    {
        await using var zk = await Zk.ConnectAsync(server.ConnectionString);
        Assert.Equal(ConnectionState.SyncConnected, zk.State);
        Assert.NotEqual(0, zk.SessionId);
        Assert.Equal(16, zk.SessionPassword.Length);
        Assert.Equal(server.ConnectionString, zk.ConnectedServer);
        Assert.True(zk.NegotiatedTimeout > TimeSpan.Zero);

        var root = Zk.UniqueRoot();
        Assert.Null(await zk.ExistsAsync(root));
        Assert.Equal(root, await zk.CreateAsync(root, Zk.Bytes("v0"), Open, CreateMode.Persistent));
        var (data, stat) = await zk.GetDataAsync(root);
        Assert.Equal("v0", Zk.Text(data));
        Assert.Equal(0, stat.Version);
        Assert.Equal(2, stat.DataLength);
        Assert.Equal(0, stat.EphemeralOwner);

        var stat1 = await zk.SetDataAsync(root, Zk.Bytes("v1"), 0);
        Assert.Equal(1, stat1.Version);
        var stat2 = await zk.SetDataAsync(root, Zk.Bytes("v2"));
        Assert.Equal(2, stat2.Version);
        Assert.True(stat2.Mzxid > stat.Mzxid);
        Assert.Equal(stat.Czxid, stat2.Czxid);

        var bad = await Assert.ThrowsAsync<BadVersionException>(() => zk.SetDataAsync(root, Zk.Bytes("x"), 1));
        Assert.Equal(KeeperErrorCode.BadVersion, bad.Code);
        Assert.Equal(root, bad.Path);
        Assert.Equal(-1, bad.FailedOpIndex);

        var exists = await Assert.ThrowsAsync<NodeExistsException>(() => zk.CreateAsync(root, [], Open, CreateMode.Persistent));
        Assert.Equal(KeeperErrorCode.NodeExists, exists.Code);

        var noNode = await Assert.ThrowsAsync<NoNodeException>(() => zk.GetDataAsync(root + "/missing"));
        Assert.Equal(KeeperErrorCode.NoNode, noNode.Code);
        Assert.Equal(root + "/missing", noNode.Path);
        await Assert.ThrowsAsync<NoNodeException>(() => zk.SetDataAsync(root + "/missing", []));
        await Assert.ThrowsAsync<NoNodeException>(() => zk.DeleteAsync(root + "/missing"));
        await Assert.ThrowsAsync<NoNodeException>(() => zk.CreateAsync(root + "/missing/child", [], Open, CreateMode.Persistent));
        await Assert.ThrowsAsync<NoNodeException>(() => zk.GetChildrenAsync(root + "/missing"));

        await zk.CreateAsync(root + "/a", Zk.Bytes("a"), Open, CreateMode.Persistent);
        await zk.CreateAsync(root + "/b", [], Open, CreateMode.Persistent);
        var (children, parentStat) = await zk.GetChildrenAsync(root);
        Assert.Equal(["a", "b"], children.Order());
        Assert.Equal(2, parentStat.NumChildren);

        var notEmpty = await Assert.ThrowsAsync<NotEmptyException>(() => zk.DeleteAsync(root));
        Assert.Equal(KeeperErrorCode.NotEmpty, notEmpty.Code);

        var eph = await zk.CreateAsync(root + "/eph", [], Open, CreateMode.Ephemeral);
        var noKids = await Assert.ThrowsAsync<NoChildrenForEphemeralsException>(() => zk.CreateAsync(eph + "/kid", [], Open, CreateMode.Persistent));
        Assert.Equal(KeeperErrorCode.NoChildrenForEphemerals, noKids.Code);

        await Assert.ThrowsAsync<BadVersionException>(() => zk.DeleteAsync(root + "/a", 5));
        await zk.DeleteAsync(root + "/a", 0);
        await zk.DeleteAsync(root + "/b");
        await zk.DeleteAsync(eph);
        await zk.SyncAsync(root);
        await zk.DeleteAsync(root, 2);
        Assert.Null(await zk.ExistsAsync(root));

        await Assert.ThrowsAsync<ArgumentException>(() => zk.GetDataAsync("relative"));
    }

    [Fact]
    public async Task Sequential_and_ephemeral_nodes()
    {
        var root = Zk.UniqueRoot();
        await using var observer = await Zk.ConnectAsync(server.ConnectionString);
        await observer.CreateAsync(root, [], Open, CreateMode.Persistent);

        var zk = await Zk.ConnectAsync(server.ConnectionString);
        var s1 = await zk.CreateAsync(root + "/seq-", [], Open, CreateMode.PersistentSequential);
        var s2 = await zk.CreateAsync(root + "/seq-", [], Open, CreateMode.PersistentSequential);
        Assert.Matches(@"/seq-\d{10}$", s1);
        Assert.True(string.CompareOrdinal(s1, s2) < 0, $"{s1} < {s2}");
        Assert.Equal(long.Parse(s1[^10..]) + 1, long.Parse(s2[^10..]));

        var e = await zk.CreateAsync(root + "/eph", Zk.Bytes("x"), Open, CreateMode.Ephemeral);
        var es = await zk.CreateAsync(root + "/eseq-", [], Open, CreateMode.EphemeralSequential);
        Assert.Matches(@"/eseq-\d{10}$", es);
        Assert.Equal(zk.SessionId, (await observer.ExistsAsync(e))!.EphemeralOwner);
        Assert.Equal(zk.SessionId, (await observer.ExistsAsync(es))!.EphemeralOwner);
        Assert.Equal(0, (await observer.ExistsAsync(s1))!.EphemeralOwner);

        await zk.CloseAsync();
        Assert.Equal(ConnectionState.Closed, zk.State);
        // closeSession removes the ephemerals at once (no session-timeout wait).
        Assert.Null(await observer.ExistsAsync(e));
        Assert.Null(await observer.ExistsAsync(es));
        Assert.NotNull(await observer.ExistsAsync(s1));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => zk.GetDataAsync(root));
        await zk.DisposeAsync();
    }

    [Fact]
    public async Task Each_watch_kind_fires_once_with_kind_and_path()
    {
        var root = Zk.UniqueRoot();
        await using var zk = await Zk.ConnectAsync(server.ConnectionString);
        await using var other = await Zk.ConnectAsync(server.ConnectionString);
        await zk.CreateAsync(root, Zk.Bytes("0"), Open, CreateMode.Persistent);

        // data watch -> NodeDataChanged, once
        var data = new EventRecorder();
        await zk.GetDataAsync(root, data.Watcher);
        await other.SetDataAsync(root, Zk.Bytes("1"));
        var ev = await data.WaitForAsync(e => e.Kind != WatchEventKind.None, what: "data changed");
        Assert.Equal(new WatchedEvent(WatchEventKind.NodeDataChanged, ConnectionState.SyncConnected, root), ev);
        await other.SetDataAsync(root, Zk.Bytes("2"));

        // exists on a missing node -> NodeCreated
        var created = new EventRecorder();
        Assert.Null(await zk.ExistsAsync(root + "/c", created.Watcher));
        await other.CreateAsync(root + "/c", [], Open, CreateMode.Persistent);
        Assert.Equal(new WatchedEvent(WatchEventKind.NodeCreated, ConnectionState.SyncConnected, root + "/c"),
            await created.WaitForAsync(e => e.Kind != WatchEventKind.None, what: "created"));

        // children -> NodeChildrenChanged
        var kids = new EventRecorder();
        await zk.GetChildrenAsync(root, kids.Watcher);
        await other.CreateAsync(root + "/d", [], Open, CreateMode.Persistent);
        Assert.Equal(new WatchedEvent(WatchEventKind.NodeChildrenChanged, ConnectionState.SyncConnected, root),
            await kids.WaitForAsync(e => e.Kind != WatchEventKind.None, what: "children"));

        // exists on a present node -> NodeDeleted; the same callback armed twice (getData + exists) runs once
        var deleted = new EventRecorder();
        await zk.ExistsAsync(root + "/c", deleted.Watcher);
        await zk.GetDataAsync(root + "/c", deleted.Watcher);
        await other.DeleteAsync(root + "/c");
        Assert.Equal(new WatchedEvent(WatchEventKind.NodeDeleted, ConnectionState.SyncConnected, root + "/c"),
            await deleted.WaitForAsync(e => e.Kind != WatchEventKind.None, what: "deleted"));

        // Later changes reach nobody: a marker watch armed after them fires, and the earlier ones stayed at one.
        var marker = new EventRecorder();
        await other.CreateAsync(root + "/e", [], Open, CreateMode.Persistent);
        await other.DeleteAsync(root + "/d");
        await zk.GetDataAsync(root, marker.Watcher);
        await other.SetDataAsync(root, Zk.Bytes("3"));
        await marker.WaitForAsync(e => e.Kind == WatchEventKind.NodeDataChanged, what: "marker");
        Assert.Single(data.Events);
        Assert.Single(created.Events);
        Assert.Single(kids.Events);
        Assert.Single(deleted.Events);

        // A failed getData arms nothing.
        var none = new EventRecorder();
        await Assert.ThrowsAsync<NoNodeException>(() => zk.GetDataAsync(root + "/zzz", none.Watcher));
        await other.CreateAsync(root + "/zzz", [], Open, CreateMode.Persistent);
        var marker2 = new EventRecorder();
        await zk.GetDataAsync(root, marker2.Watcher);
        await other.SetDataAsync(root, Zk.Bytes("4"));
        await marker2.WaitForAsync(e => e.Kind == WatchEventKind.NodeDataChanged, what: "marker2");
        Assert.Empty(none.Events);
    }

    [Fact]
    public async Task Multi_applies_all_or_nothing()
    {
        var root = Zk.UniqueRoot();
        await using var zk = await Zk.ConnectAsync(server.ConnectionString);
        await zk.CreateAsync(root, [], Open, CreateMode.Persistent);
        await zk.CreateAsync(root + "/old", [], Open, CreateMode.Persistent);

        var results = await zk.MultiAsync(
        [
            new Op.Create(root + "/a", Zk.Bytes("a"), Open, CreateMode.Persistent),
            new Op.Create(root + "/s-", [], Open, CreateMode.PersistentSequential),
            new Op.SetData(root, Zk.Bytes("r"), 0),
            new Op.Check(root + "/a", 0),
            new Op.Delete(root + "/old", 0),
        ]);
        Assert.Equal(5, results.Count);
        Assert.Equal(new OpResult.Created(root + "/a"), results[0]);
        Assert.Matches(@"/s-\d{10}$", Assert.IsType<OpResult.Created>(results[1]).Path);
        Assert.Equal(1, Assert.IsType<OpResult.DataSet>(results[2]).Stat.Version);
        Assert.IsType<OpResult.Checked>(results[3]);
        Assert.IsType<OpResult.Deleted>(results[4]);
        Assert.Null(await zk.ExistsAsync(root + "/old"));

        var failure = await Assert.ThrowsAsync<BadVersionException>(() => zk.MultiAsync(
        [
            new Op.Create(root + "/b", [], Open, CreateMode.Persistent),
            new Op.SetData(root, Zk.Bytes("x"), 0), // version is 1
            new Op.Delete(root + "/a"),
        ]));
        Assert.Equal(1, failure.FailedOpIndex);
        Assert.Equal(root, failure.Path);
        Assert.Null(await zk.ExistsAsync(root + "/b"));
        Assert.NotNull(await zk.ExistsAsync(root + "/a"));
        Assert.Equal("r", Zk.Text((await zk.GetDataAsync(root)).Data));

        var noNode = await Assert.ThrowsAsync<NoNodeException>(() => zk.MultiAsync(
        [
            new Op.Check(root, 1),
            new Op.Delete(root + "/a"),
            new Op.Delete(root + "/missing"),
        ]));
        Assert.Equal(2, noNode.FailedOpIndex);
        Assert.NotNull(await zk.ExistsAsync(root + "/a"));
        Assert.Empty(await zk.MultiAsync([]));
    }

    [Fact]
    public async Task Pipelined_requests_complete_correctly()
    {
        var root = Zk.UniqueRoot();
        await using var zk = await Zk.ConnectAsync(server.ConnectionString);
        await zk.CreateAsync(root, [], Open, CreateMode.Persistent);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => zk.CreateAsync($"{root}/n{i}", Zk.Bytes($"value-{i}"), Open, CreateMode.Persistent)));

        var tasks = Enumerable.Range(0, 1000).Select(i => (i, task: zk.GetDataAsync($"{root}/n{i % 20}"))).ToArray();
        var replies = await Task.WhenAll(tasks.Select(t => t.task)).WaitAsync(Zk.Deadline);
        for (var i = 0; i < replies.Length; i++)
            Assert.Equal($"value-{i % 20}", Zk.Text(replies[i].Data));

        // Many concurrent callers on many threads, mixing reads and writes.
        var writes = Enumerable.Range(0, 200).Select(i => Task.Run(() => zk.SetDataAsync($"{root}/n{i % 20}", Zk.Bytes($"w{i}"))));
        var stats = await Task.WhenAll(writes).WaitAsync(Zk.Deadline);
        Assert.Equal(200, stats.Length);
        for (var n = 0; n < 20; n++)
            Assert.Equal(10, (await zk.ExistsAsync($"{root}/n{n}"))!.Version);
    }

    [Fact]
    public async Task Digest_auth_and_acls()
    {
        var root = Zk.UniqueRoot();
        await using var owner = await Zk.ConnectAsync(server.ConnectionString);
        await owner.AddAuthAsync(AuthInfo.Digest("alice", "secret"));
        await owner.CreateAsync(root, Zk.Bytes("private"), Acl.CreatorAll, CreateMode.Persistent);
        Assert.Equal("private", Zk.Text((await owner.GetDataAsync(root)).Data));

        var (acl, _) = await owner.GetAclAsync(root);
        var entry = Assert.Single(acl);
        Assert.Equal(Perms.All, entry.Perms);
        Assert.Equal(Acl.Digest("alice", "secret"), entry.Id);

        await using var stranger = await Zk.ConnectAsync(server.ConnectionString);
        var noAuth = await Assert.ThrowsAsync<NoAuthException>(() => stranger.GetDataAsync(root));
        Assert.Equal(KeeperErrorCode.NoAuth, noAuth.Code);
        await stranger.AddAuthAsync(AuthInfo.Digest("alice", "wrong"));
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.SetDataAsync(root, []));

        // Auth given in the options is sent on connect.
        var opts = Zk.Options(server.ConnectionString) with { Auth = [AuthInfo.Digest("alice", "secret")] };
        await using var friend = await ZooKeeperClient.ConnectAsync(opts);
        Assert.Equal("private", Zk.Text((await friend.GetDataAsync(root)).Data));

        // setAcl: readable by everyone, writable by alice only.
        await owner.SetAclAsync(root, [new Acl(Perms.Read, new Id("world", "anyone")), new Acl(Perms.All, Acl.Digest("alice", "secret"))], 0);
        Assert.Equal("private", Zk.Text((await stranger.GetDataAsync(root)).Data));
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.SetDataAsync(root, []));
        await Assert.ThrowsAsync<BadVersionException>(() => owner.SetAclAsync(root, Acl.OpenUnsafe, 0));
        await owner.SetAclAsync(root, Acl.OpenUnsafe);
        await stranger.DeleteAsync(root);
    }

    [Fact]
    public async Task A_saved_session_resumes_in_a_new_client()
    {
        var root = Zk.UniqueRoot();
        await using var observer = await Zk.ConnectAsync(server.ConnectionString);
        var first = await Zk.ConnectAsync(server.ConnectionString, sessionSeconds: 10);
        var path = await first.CreateAsync(root, [], Open, CreateMode.Ephemeral);
        var (id, password) = (first.SessionId, first.SessionPassword);
        await first.AbandonAsync(); // the process "crashes": the session lives on

        Assert.Equal(id, (await observer.ExistsAsync(path))!.EphemeralOwner);
        var options = Zk.Options(server.ConnectionString, 10) with { SessionId = id, SessionPassword = password };
        await using var resumed = await ZooKeeperClient.ConnectAsync(options);
        Assert.Equal(id, resumed.SessionId);
        Assert.Equal(password, resumed.SessionPassword);
        Assert.Equal(id, (await resumed.ExistsAsync(path))!.EphemeralOwner);
        Assert.Equal(id, (await observer.ExistsAsync(path))!.EphemeralOwner);

        await resumed.CloseAsync();
        Assert.Null(await observer.ExistsAsync(path));
    }

    [Fact]
    public async Task Wrong_password_or_timed_out_session_is_expired()
    {
        await using var observer = await Zk.ConnectAsync(server.ConnectionString);
        var first = await Zk.ConnectAsync(server.ConnectionString, sessionSeconds: 1);
        var path = await first.CreateAsync(Zk.UniqueRoot(), [], Open, CreateMode.Ephemeral);
        var (id, password) = (first.SessionId, first.SessionPassword);

        var wrong = (byte[])password.Clone();
        wrong[0] ^= 0xff;
        var events = new EventRecorder();
        await Assert.ThrowsAsync<SessionExpiredException>(() => ZooKeeperClient.ConnectAsync(
            Zk.Options(server.ConnectionString, 1) with { SessionId = id, SessionPassword = wrong }, events.Watcher));
        await events.WaitForAsync(e => e.State == ConnectionState.Expired, what: "expired event");

        await first.AbandonAsync();
        // Wait for the server to expire the session (its ephemeral goes), then try to resume it.
        await Zk.UntilAsync(async () => await observer.ExistsAsync(path) is null, what: "session timed out");
        await Assert.ThrowsAsync<SessionExpiredException>(() => ZooKeeperClient.ConnectAsync(
            Zk.Options(server.ConnectionString, 1) with { SessionId = id, SessionPassword = password }));
    }

    [Fact]
    public async Task A_live_client_whose_session_ends_becomes_expired()
    {
        var events = new EventRecorder();
        await using var zk = await Zk.ConnectAsync(server.ConnectionString, events.Watcher, sessionSeconds: 10);
        var root = await zk.CreateAsync(Zk.UniqueRoot(), [], Open, CreateMode.Persistent);
        var watch = new EventRecorder();
        await zk.GetDataAsync(root, watch.Watcher);

        // Another client takes the session over (the server drops zk's connection) and closes it. zk may win the
        // session back by reconnecting before the thief's closeSession goes out, so the thief retries.
        var stolen = Zk.Options(server.ConnectionString) with { SessionId = zk.SessionId, SessionPassword = zk.SessionPassword };
        await Zk.UntilAsync(async () =>
        {
            if (zk.State == ConnectionState.Expired) return true;
            try
            {
                var thief = await ZooKeeperClient.ConnectAsync(stolen);
                await thief.CloseAsync();
            }
            catch (SessionExpiredException) { /* closed already; zk learns it on its next reconnect */ }
            return zk.State == ConnectionState.Expired;
        }, what: "zk expired");

        await events.WaitForAsync(e => e.State == ConnectionState.Expired, what: "expired");
        await watch.WaitForAsync(e => e.State == ConnectionState.Expired, what: "watcher told of expiry");
        Assert.Equal(ConnectionState.Expired, zk.State);
        await Assert.ThrowsAsync<SessionExpiredException>(() => zk.GetDataAsync(root));
        await Assert.ThrowsAsync<SessionExpiredException>(() => zk.CreateAsync(root + "/x", [], Open, CreateMode.Persistent));
        await zk.CloseAsync();
        Assert.Equal(ConnectionState.Expired, zk.State);
        await using var cleanup = await Zk.ConnectAsync(server.ConnectionString);
        await cleanup.DeleteAsync(root);
    }

    [Fact]
    public async Task Connect_to_nothing_fails_within_the_deadline()
    {
        var port = Ensemble.TestKit.ZooKeeper.ZooKeeperJava.FreePort();
        var options = new ZooKeeperOptions($"127.0.0.1:{port}", TimeSpan.FromSeconds(5)) { ConnectTimeout = TimeSpan.FromSeconds(1) };
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<ConnectionLossException>(() => ZooKeeperClient.ConnectAsync(options));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_server_that_never_answers_the_handshake_fails_the_connect_within_the_deadline()
    {
        using var blackHole = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        blackHole.Start();
        var port = ((System.Net.IPEndPoint)blackHole.LocalEndpoint).Port;
        var options = new ZooKeeperOptions($"127.0.0.1:{port}", TimeSpan.FromSeconds(5)) { ConnectTimeout = TimeSpan.FromSeconds(1) };
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<ConnectionLossException>(() => ZooKeeperClient.ConnectAsync(options));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Pings_keep_an_idle_short_session_alive()
    {
        var events = new EventRecorder();
        // Short, but not so short that a busy test machine (a 2/3-timeout read deadline of under a second) breaks it.
        await using var zk = await Zk.ConnectAsync(server.ConnectionString, events.Watcher, sessionSeconds: 3);
        Assert.True(zk.NegotiatedTimeout <= TimeSpan.FromSeconds(3));
        var path = await zk.CreateAsync(Zk.UniqueRoot(), [], Open, CreateMode.Ephemeral);
        // Stay idle for three session timeouts, checking all along that the connection holds.
        var idleUntil = DateTime.UtcNow + 3 * zk.NegotiatedTimeout;
        while (DateTime.UtcNow < idleUntil)
        {
            Assert.Equal(ConnectionState.SyncConnected, zk.State);
            await Task.Delay(50);
        }
        Assert.DoesNotContain(events.Events, e => e.State != ConnectionState.SyncConnected);
        await using var observer = await Zk.ConnectAsync(server.ConnectionString);
        Assert.Equal(zk.SessionId, (await observer.ExistsAsync(path))!.EphemeralOwner);
    }
}
