using Ensemble.ZooKeeper;
using Xunit;

namespace Ensemble.Tests.ZooKeeper;

[Collection(ZooKeeperCollection.Name)]
public sealed class ZooKeeperFailoverTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task Failover_to_another_server_keeps_the_session_and_its_watches()
    {
        using var ensemble = new ZooKeeperTestEnsemble();
        var events = new EventRecorder();
        await using var zk = await Zk.ConnectAsync(ensemble.ConnectionString, events.Watcher, sessionSeconds: 8);
        var id = zk.SessionId;
        var root = await zk.CreateAsync(Zk.UniqueRoot(), Zk.Bytes("0"), Acl.OpenUnsafe, CreateMode.Persistent);
        var eph = await zk.CreateAsync(root + "-eph", [], Acl.OpenUnsafe, CreateMode.Ephemeral);
        var watch = new EventRecorder();
        await zk.GetDataAsync(root, watch.Watcher);
        var child = new EventRecorder();
        await zk.GetChildrenAsync(root, child.Watcher);

        var before = zk.ConnectedServer;
        var index = ensemble.IndexOf(before);
        Assert.True(index >= 0, $"connected to {before}");
        ensemble.Stop(index);

        await events.WaitForAsync(e => e.State == ConnectionState.Disconnected, Long, "disconnected");
        await Zk.UntilAsync(() => zk.State == ConnectionState.SyncConnected && zk.ConnectedServer is not null, Long, "reconnected");
        Assert.NotEqual(before, zk.ConnectedServer);
        Assert.Equal(id, zk.SessionId);
        // The state changes before the event reaches the watcher (events are delivered in order, on their own thread).
        await Zk.UntilAsync(() => events.Events.SkipWhile(e => e.State != ConnectionState.Disconnected)
            .Any(e => e is { Kind: WatchEventKind.None, State: ConnectionState.SyncConnected }), Long, "the SyncConnected event after the disconnect");
        var log = events.Events.ToList();
        var disconnected = log.FindIndex(e => e.State == ConnectionState.Disconnected);
        Assert.Equal(WatchEventKind.None, log[disconnected].Kind);
        Assert.Null(log[disconnected].Path);

        // The armed watches were re-set on the new server: a later change fires them.
        await using var other = await Zk.ConnectAsync(ensemble.ConnectionString);
        await other.SetDataAsync(root, Zk.Bytes("1"));
        await watch.WaitForAsync(e => e.Kind == WatchEventKind.NodeDataChanged, Long, "data watch after failover");
        Assert.Equal(root, watch.Events.Single(e => e.Kind != WatchEventKind.None).Path);
        Assert.Contains(watch.Events, e => e.State == ConnectionState.Disconnected);
        await other.CreateAsync(root + "/kid", [], Acl.OpenUnsafe, CreateMode.Persistent);
        await child.WaitForAsync(e => e.Kind == WatchEventKind.NodeChildrenChanged, Long, "child watch after failover");

        Assert.Equal(id, (await other.ExistsAsync(eph))!.EphemeralOwner);
        Assert.Equal("1", Zk.Text((await zk.GetDataAsync(root)).Data));
    }

    [Fact]
    public async Task Changes_made_while_disconnected_fire_the_rearmed_watches()
    {
        using var ensemble = new ZooKeeperTestEnsemble();
        await using var zk = await Zk.ConnectAsync(ensemble.ConnectionString, sessionSeconds: 8);
        var root = await zk.CreateAsync(Zk.UniqueRoot(), [], Acl.OpenUnsafe, CreateMode.Persistent);
        var watch = new EventRecorder();
        await zk.GetDataAsync(root, watch.Watcher);
        var created = new EventRecorder();
        Assert.Null(await zk.ExistsAsync(root + "-later", created.Watcher));

        var index = ensemble.IndexOf(zk.ConnectedServer);
        // A second client on the other nodes changes things while zk is away.
        var others = string.Join(',', Enumerable.Range(0, 3).Where(i => i != index).Select(ensemble.ServerAddress));
        await using var other = await Zk.ConnectAsync(others);
        ensemble.Stop(index);
        await Zk.UntilAsync(async () =>
        {
            try { await other.SetDataAsync(root, Zk.Bytes("changed")); await other.CreateAsync(root + "-later", [], Acl.OpenUnsafe, CreateMode.Persistent); return true; }
            catch (KeeperException e) when (e is ConnectionLossException or NodeExistsException) { return e is NodeExistsException; }
        }, Long, "write through the remaining quorum");

        await watch.WaitForAsync(e => e.Kind == WatchEventKind.NodeDataChanged, Long, "data changed while away");
        await created.WaitForAsync(e => e.Kind == WatchEventKind.NodeCreated, Long, "created while away");
        Assert.Equal(ConnectionState.SyncConnected, zk.State);
    }

    [Fact]
    public async Task Pending_requests_fail_with_connection_loss_and_the_client_comes_back()
    {
        using var server = new ZooKeeperTestServer();
        var events = new EventRecorder();
        // Long enough for the server's JVM to start again on a loaded 2-core machine before the session expires.
        await using var zk = await Zk.ConnectAsync(server.ConnectionString, events.Watcher, sessionSeconds: 40);
        var id = zk.SessionId;
        var root = await zk.CreateAsync(Zk.UniqueRoot(), Zk.Bytes("x"), Acl.OpenUnsafe, CreateMode.Ephemeral);

        var inFlight = Enumerable.Range(0, 500).Select(_ => zk.GetDataAsync(root)).ToArray();
        server.Stop();
        foreach (var t in inFlight)
        {
            try { await t.WaitAsync(Zk.Deadline); }
            catch (ConnectionLossException) { }
        }
        await events.WaitForAsync(e => e.State == ConnectionState.Disconnected, what: "disconnected");
        await Assert.ThrowsAsync<ConnectionLossException>(() => zk.GetDataAsync(root).WaitAsync(Zk.Deadline));

        server.Start();
        await Zk.UntilAsync(() => zk.State == ConnectionState.SyncConnected, Long, "reconnected after restart");
        Assert.Equal(id, zk.SessionId);
        Assert.Equal(id, (await zk.ExistsAsync(root))!.EphemeralOwner);
    }

    [Fact]
    public async Task Closing_with_requests_in_flight_never_hangs()
    {
        using var server = new ZooKeeperTestServer();
        var zk = await Zk.ConnectAsync(server.ConnectionString);
        var inFlight = Enumerable.Range(0, 2000).Select(_ => zk.ExistsAsync("/")).ToArray();
        await zk.CloseAsync().WaitAsync(Zk.Deadline);
        foreach (var t in inFlight)
        {
            try { Assert.NotNull(await t.WaitAsync(Zk.Deadline)); }
            catch (Exception e) when (e is ConnectionLossException or ObjectDisposedException) { }
        }
        Assert.Equal(ConnectionState.Closed, zk.State);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => zk.ExistsAsync("/"));
        await zk.DisposeAsync();
    }
}
