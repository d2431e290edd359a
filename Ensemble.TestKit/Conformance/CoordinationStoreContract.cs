using System.Threading.Channels;
using Ensemble.Coordination;
using Xunit;

namespace Ensemble.TestKit.Conformance;

/// <summary>
/// The behaviour every <see cref="ICoordinationStore"/> backend must share with ZooKeeper. A backend derives,
/// implements <see cref="OpenSessionAsync"/> (called once per session a test needs) and optionally
/// <see cref="DisposeBackendAsync"/>. Every test works below its own <see cref="Base"/> node, so a real
/// ZooKeeper server can be shared by many tests and runs; the base is removed afterwards.
/// </summary>
public abstract class CoordinationStoreContract : IAsyncLifetime
{
    /// <summary>How long a test waits for something that must happen.</summary>
    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private readonly List<ICoordinationStore> sessions = [];

    /// <summary>The unique node under which the test works.</summary>
    protected string Base { get; } = "/contract-" + Guid.NewGuid().ToString("N");

    /// <summary>The default session, opened in <see cref="InitializeAsync"/>.</summary>
    protected ICoordinationStore Store { get; private set; } = null!;

    /// <summary>Opens a new session to the backend under test.</summary>
    protected abstract Task<ICoordinationStore> OpenSessionAsync();

    /// <summary>Releases the backend after the test (and after its sessions were closed).</summary>
    protected virtual Task DisposeBackendAsync() => Task.CompletedTask;

    /// <summary>A new session that is closed after the test.</summary>
    protected async Task<ICoordinationStore> NewSessionAsync()
    {
        var session = await OpenSessionAsync();
        sessions.Add(session);
        return session;
    }

    protected string P(string relative) => Base + "/" + relative;

    private string SentinelPath => P("sentinel");

    public virtual async Task InitializeAsync()
    {
        Store = await NewSessionAsync();
        await Store.CreateAsync(Base, []);
        await Store.CreateAsync(SentinelPath, []);
    }

    public virtual async Task DisposeAsync()
    {
        try
        {
            foreach (var s in sessions)
            {
                try { await s.DisposeAsync(); } catch (StoreException) { }
            }
            var cleaner = await OpenSessionAsync();
            try { await DeleteRecursiveAsync(cleaner, Base); }
            finally { await cleaner.DisposeAsync(); }
        }
        finally
        {
            await DisposeBackendAsync();
        }
    }

    private static async Task DeleteRecursiveAsync(ICoordinationStore store, string path)
    {
        NodeChildren children;
        try { children = await store.GetChildrenAsync(path); }
        catch (NoNodeException) { return; }
        foreach (var child in children.Children)
            await DeleteRecursiveAsync(store, path + "/" + child);
        try { await store.DeleteAsync(path); }
        catch (NoNodeException) { }
    }

    /// <summary>Collects the events of one watcher delegate (the same delegate every time it is registered).</summary>
    protected sealed class WatchProbe
    {
        private readonly Channel<WatchEvent> events = Channel.CreateUnbounded<WatchEvent>();
        private int count;

        public WatchProbe()
        {
            Callback = e =>
            {
                Interlocked.Increment(ref count);
                events.Writer.TryWrite(e);
            };
        }

        public Action<WatchEvent> Callback { get; }

        public int Count => Volatile.Read(ref count);

        public async Task<WatchEvent> NextAsync() => await events.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
    }

    /// <summary>
    /// Proves that no further event is on its way to <paramref name="session"/>: a fresh watch armed now on the
    /// same session fires after every event of a transaction committed before it (events of a session are
    /// delivered in commit order), so once it has arrived the probes' counts are final.
    /// </summary>
    protected async Task SettleAsync(ICoordinationStore session)
    {
        var sentinel = new WatchProbe();
        Assert.NotNull(await session.ExistsAsync(SentinelPath, sentinel.Callback));
        await session.SetDataAsync(SentinelPath, [1]);
        var e = await sentinel.NextAsync();
        Assert.Equal(new WatchEvent(WatchEventType.NodeDataChanged, SentinelPath), e);
    }

    private static async Task<StoreException> ThrowsCodeAsync(StoreErrorCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAnyAsync<StoreException>(call);
        Assert.Equal(code, e.Code);
        return e;
    }

    // ================================================================= basic CRUD

    [Fact]
    public async Task Create_then_GetData_round_trips_bytes_and_a_fresh_stat()
    {
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var path = await Store.CreateAsync(P("node"), bytes);
        Assert.Equal(P("node"), path);

        var got = await Store.GetDataAsync(path);
        Assert.Equal(bytes, got.Data);
        var s = got.Stat;
        Assert.Equal(0, s.Version);
        Assert.Equal(0, s.Cversion);
        Assert.Equal(0, s.EphemeralOwner);
        Assert.Equal(256, s.DataLength);
        Assert.Equal(0, s.NumChildren);
        Assert.True(s.Czxid > 0);
        Assert.Equal(s.Czxid, s.Mzxid);
        Assert.Equal(s.Czxid, s.Pzxid);

        Assert.Equal(s, await Store.ExistsAsync(path));
    }

    [Fact]
    public async Task Empty_data_round_trips_as_an_empty_array()
    {
        await Store.CreateAsync(P("empty"), []);
        var got = await Store.GetDataAsync(P("empty"));
        Assert.NotNull(got.Data);
        Assert.Empty(got.Data);
        Assert.Equal(0, got.Stat.DataLength);

        await Store.SetDataAsync(P("empty"), [7, 0, 7]);
        await Store.SetDataAsync(P("empty"), []);
        got = await Store.GetDataAsync(P("empty"));
        Assert.Empty(got.Data);
        Assert.Equal(2, got.Stat.Version);
    }

    [Fact]
    public async Task Stored_data_is_not_aliased_with_caller_arrays()
    {
        var input = new byte[] { 1, 2, 3 };
        await Store.CreateAsync(P("alias"), input);
        input[0] = 99;
        var first = await Store.GetDataAsync(P("alias"));
        Assert.Equal(new byte[] { 1, 2, 3 }, first.Data);
        first.Data[1] = 99;
        Assert.Equal(new byte[] { 1, 2, 3 }, (await Store.GetDataAsync(P("alias"))).Data);
    }

    [Fact]
    public async Task Create_on_an_existing_path_throws_NodeExists()
    {
        await Store.CreateAsync(P("dup"), [1]);
        var e = await Assert.ThrowsAsync<NodeExistsException>(() => Store.CreateAsync(P("dup"), [2]));
        Assert.Equal(StoreErrorCode.NodeExists, e.Code);
        Assert.Equal(new byte[] { 1 }, (await Store.GetDataAsync(P("dup"))).Data);
        await Assert.ThrowsAsync<NodeExistsException>(() => Store.CreateAsync(Base, []));
    }

    [Fact]
    public async Task Create_without_the_parent_throws_NoNode()
    {
        await Assert.ThrowsAsync<NoNodeException>(() => Store.CreateAsync(P("missing/child"), []));
        Assert.Null(await Store.ExistsAsync(P("missing")));
    }

    [Fact]
    public async Task Operations_on_a_missing_node_throw_NoNode()
    {
        var missing = P("nope");
        await Assert.ThrowsAsync<NoNodeException>(() => Store.GetDataAsync(missing));
        await Assert.ThrowsAsync<NoNodeException>(() => Store.SetDataAsync(missing, [1]));
        await Assert.ThrowsAsync<NoNodeException>(() => Store.DeleteAsync(missing));
        await Assert.ThrowsAsync<NoNodeException>(() => Store.GetChildrenAsync(missing));
        Assert.Null(await Store.ExistsAsync(missing));
    }

    [Fact]
    public async Task Invalid_paths_throw_BadArguments()
    {
        string[] invalid =
        [
            "", "relative", Base + "/", Base + "//x", Base + "/./x", Base + "/.", Base + "/../x", Base + "/..",
            Base + "/a\0b",
        ];
        foreach (var path in invalid)
        {
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.CreateAsync(path, []));
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.GetDataAsync(path));
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.ExistsAsync(path));
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.SetDataAsync(path, []));
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.DeleteAsync(path));
            await ThrowsCodeAsync(StoreErrorCode.BadArguments, () => Store.GetChildrenAsync(path));
        }
        // "." and ".." are fine as part of a longer name
        await Store.CreateAsync(P(".hidden"), []);
        await Store.CreateAsync(P("..x"), []);
    }

    [Fact]
    public async Task The_root_always_exists()
    {
        var root = await Store.ExistsAsync("/");
        Assert.NotNull(root);
        Assert.Contains(Base[1..], (await Store.GetChildrenAsync("/")).Children);
    }

    [Fact]
    public async Task SetData_bumps_version_and_mzxid_and_keeps_czxid()
    {
        await Store.CreateAsync(P("v"), [1]);
        var before = (await Store.GetDataAsync(P("v"))).Stat;

        var s1 = await Store.SetDataAsync(P("v"), [1, 2], 0);
        Assert.Equal(1, s1.Version);
        Assert.Equal(before.Czxid, s1.Czxid);
        Assert.True(s1.Mzxid > before.Mzxid);
        Assert.Equal(2, s1.DataLength);

        var s2 = await Store.SetDataAsync(P("v"), [3], -1);
        Assert.Equal(2, s2.Version);
        Assert.True(s2.Mzxid > s1.Mzxid);

        var got = await Store.GetDataAsync(P("v"));
        Assert.Equal(new byte[] { 3 }, got.Data);
        Assert.Equal(s2, got.Stat);
    }

    [Fact]
    public async Task SetData_with_a_stale_version_throws_BadVersion_and_changes_nothing()
    {
        await Store.CreateAsync(P("v"), [1]);
        await Store.SetDataAsync(P("v"), [2], 0);
        var e = await Assert.ThrowsAsync<BadVersionException>(() => Store.SetDataAsync(P("v"), [3], 0));
        Assert.Equal(StoreErrorCode.BadVersion, e.Code);
        var got = await Store.GetDataAsync(P("v"));
        Assert.Equal(new byte[] { 2 }, got.Data);
        Assert.Equal(1, got.Stat.Version);
    }

    [Fact]
    public async Task Delete_checks_version_and_children()
    {
        await Store.CreateAsync(P("d"), []);
        await Store.CreateAsync(P("d/child"), []);
        await Store.SetDataAsync(P("d"), [1]);

        await Assert.ThrowsAsync<BadVersionException>(() => Store.DeleteAsync(P("d"), 0));
        var notEmpty = await Assert.ThrowsAsync<NotEmptyException>(() => Store.DeleteAsync(P("d"), 1));
        Assert.Equal(StoreErrorCode.NotEmpty, notEmpty.Code);
        await Assert.ThrowsAsync<NotEmptyException>(() => Store.DeleteAsync(P("d")));

        await Store.DeleteAsync(P("d/child"), 0);
        await Store.DeleteAsync(P("d"), 1);
        Assert.Null(await Store.ExistsAsync(P("d")));
        await Assert.ThrowsAsync<NoNodeException>(() => Store.DeleteAsync(P("d")));
    }

    [Fact]
    public async Task Create_and_delete_bump_the_parent_cversion_and_pzxid_only()
    {
        await Store.CreateAsync(P("parent"), [5]);
        var p0 = (await Store.ExistsAsync(P("parent")))!;

        await Store.CreateAsync(P("parent/a"), []);
        var a = (await Store.ExistsAsync(P("parent/a")))!;
        var p1 = (await Store.ExistsAsync(P("parent")))!;
        Assert.Equal(1, p1.Cversion);
        Assert.Equal(1, p1.NumChildren);
        Assert.Equal(a.Czxid, p1.Pzxid);
        Assert.Equal(p0.Version, p1.Version);
        Assert.Equal(p0.Mzxid, p1.Mzxid);
        Assert.Equal(p0.Czxid, p1.Czxid);

        await Store.CreateAsync(P("parent/b"), []);
        var b = (await Store.ExistsAsync(P("parent/b")))!;
        Assert.True(b.Czxid > a.Czxid);

        await Store.DeleteAsync(P("parent/a"));
        var p3 = (await Store.ExistsAsync(P("parent")))!;
        Assert.Equal(3, p3.Cversion);
        Assert.Equal(1, p3.NumChildren);
        Assert.True(p3.Pzxid > b.Czxid);
        Assert.Equal(p0.Version, p3.Version);

        // data changes of a child do not touch the parent
        await Store.SetDataAsync(P("parent/b"), [1]);
        Assert.Equal(p3, await Store.ExistsAsync(P("parent")));
    }

    [Fact]
    public async Task Sequential_nodes_are_named_after_the_parent_cversion()
    {
        await Store.CreateAsync(P("q"), []);
        Assert.Equal(P("q/item-0000000000"), await Store.CreateAsync(P("q/item-"), [], CreateMode.PersistentSequential));
        Assert.Equal(P("q/item-0000000001"), await Store.CreateAsync(P("q/item-"), [], CreateMode.PersistentSequential));
        // A plain child counts too. (How a delete in between moves the counter is a ZooKeeper detail that
        // differs between its stat and its sequence numbers, so the contract leaves it out.)
        await Store.CreateAsync(P("q/plain"), []);
        Assert.Equal(P("q/other-0000000003"), await Store.CreateAsync(P("q/other-"), [9], CreateMode.PersistentSequential));
        // a trailing slash is allowed for sequential creates: the name is the bare counter
        Assert.Equal(P("q/0000000004"), await Store.CreateAsync(P("q/"), [], CreateMode.PersistentSequential));

        var children = await Store.GetChildrenAsync(P("q"));
        Assert.Equal(["0000000004", "item-0000000000", "item-0000000001", "other-0000000003", "plain"], children.Children);
        Assert.Equal(new byte[] { 9 }, (await Store.GetDataAsync(P("q/other-0000000003"))).Data);
    }

    [Fact]
    public async Task GetChildren_returns_sorted_relative_names_and_the_parent_stat()
    {
        await Store.CreateAsync(P("kids"), [1, 2]);
        foreach (var name in new[] { "b", "a1", "C", "a", "_", "b0" })
            await Store.CreateAsync(P("kids/" + name), []);
        await Store.CreateAsync(P("kids/a/grandchild"), []);

        var result = await Store.GetChildrenAsync(P("kids"));
        Assert.Equal(["C", "_", "a", "a1", "b", "b0"], result.Children);
        Assert.Equal(6, result.Stat.NumChildren);
        Assert.Equal(6, result.Stat.Cversion);
        Assert.Equal(2, result.Stat.DataLength);
        Assert.Equal(await Store.ExistsAsync(P("kids")), result.Stat);

        Assert.Empty((await Store.GetChildrenAsync(P("kids/b"))).Children);
    }

    // ================================================================= sessions and ephemerals

    [Fact]
    public async Task Sessions_have_distinct_positive_ids()
    {
        var other = await NewSessionAsync();
        Assert.True(Store.SessionId > 0);
        Assert.True(other.SessionId > 0);
        Assert.NotEqual(Store.SessionId, other.SessionId);
    }

    [Fact]
    public async Task Ephemeral_nodes_carry_the_owner_and_vanish_when_the_session_closes()
    {
        var owner = await NewSessionAsync();
        var observer = await NewSessionAsync();
        await Store.CreateAsync(P("eph"), []);
        await owner.CreateAsync(P("eph/e"), [4], CreateMode.Ephemeral);
        var seq = await owner.CreateAsync(P("eph/s-"), [], CreateMode.EphemeralSequential);
        Assert.Equal(P("eph/s-0000000001"), seq);

        await observer.SyncAsync(P("eph/e"));
        var stat = await observer.ExistsAsync(P("eph/e"));
        Assert.NotNull(stat);
        Assert.Equal(owner.SessionId, stat.EphemeralOwner);
        Assert.Equal(owner.SessionId, (await observer.ExistsAsync(seq))!.EphemeralOwner);
        Assert.Equal(0, (await observer.ExistsAsync(P("eph")))!.EphemeralOwner);

        var deleted = new WatchProbe();
        var children = new WatchProbe();
        Assert.NotNull(await observer.ExistsAsync(P("eph/e"), deleted.Callback));
        Assert.Equal(2, (await observer.GetChildrenAsync(P("eph"), children.Callback)).Children.Count);

        await owner.DisposeAsync();

        Assert.Equal(new WatchEvent(WatchEventType.NodeDeleted, P("eph/e")), await deleted.NextAsync());
        Assert.Equal(new WatchEvent(WatchEventType.NodeChildrenChanged, P("eph")), await children.NextAsync());
        await observer.SyncAsync(P("eph"));
        Assert.Null(await observer.ExistsAsync(P("eph/e")));
        Assert.Null(await observer.ExistsAsync(seq));
        Assert.Empty((await observer.GetChildrenAsync(P("eph"))).Children);
    }

    [Fact]
    public async Task Ephemeral_nodes_cannot_have_children()
    {
        await Store.CreateAsync(P("e"), [], CreateMode.Ephemeral);
        await ThrowsCodeAsync(StoreErrorCode.NoChildrenForEphemerals, () => Store.CreateAsync(P("e/child"), []));
        await ThrowsCodeAsync(StoreErrorCode.NoChildrenForEphemerals,
            () => Store.CreateAsync(P("e/seq-"), [], CreateMode.EphemeralSequential));
        Assert.Empty((await Store.GetChildrenAsync(P("e"))).Children);
        await Store.DeleteAsync(P("e"));
        Assert.Null(await Store.ExistsAsync(P("e")));
    }

    [Fact]
    public async Task A_closed_session_throws_SessionExpired()
    {
        var session = await NewSessionAsync();
        await session.CreateAsync(P("x"), []);
        await session.DisposeAsync();
        await ThrowsCodeAsync(StoreErrorCode.SessionExpired, () => session.GetDataAsync(P("x")));
        await ThrowsCodeAsync(StoreErrorCode.SessionExpired, () => session.CreateAsync(P("y"), []));
        await ThrowsCodeAsync(StoreErrorCode.SessionExpired, () => session.MultiAsync([new StoreOp.Check(P("x"), -1)]));
        Assert.NotNull(await Store.ExistsAsync(P("x")));
    }

    [Fact]
    public async Task Sync_completes()
    {
        await Store.CreateAsync(P("s"), []);
        await Store.SyncAsync(P("s")).WaitAsync(Deadline);
        await Store.SyncAsync("/").WaitAsync(Deadline);
    }

    // ================================================================= watches

    [Fact]
    public async Task GetData_watch_fires_NodeDataChanged_exactly_once()
    {
        var writer = await NewSessionAsync();
        await Store.CreateAsync(P("w"), [1]);
        var probe = new WatchProbe();
        await Store.GetDataAsync(P("w"), probe.Callback);

        await writer.SetDataAsync(P("w"), [2]);
        Assert.Equal(new WatchEvent(WatchEventType.NodeDataChanged, P("w")), await probe.NextAsync());

        await writer.SetDataAsync(P("w"), [3]);
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);
    }

    [Fact]
    public async Task GetData_watch_fires_NodeDeleted_on_delete()
    {
        await Store.CreateAsync(P("w"), [1]);
        var probe = new WatchProbe();
        await Store.GetDataAsync(P("w"), probe.Callback);
        await Store.DeleteAsync(P("w"));
        Assert.Equal(new WatchEvent(WatchEventType.NodeDeleted, P("w")), await probe.NextAsync());
        await Store.CreateAsync(P("w"), []);
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);
    }

    [Fact]
    public async Task Exists_watch_on_an_existing_node_fires_NodeDataChanged_once()
    {
        await Store.CreateAsync(P("w"), []);
        var probe = new WatchProbe();
        Assert.NotNull(await Store.ExistsAsync(P("w"), probe.Callback));
        await Store.SetDataAsync(P("w"), [1]);
        Assert.Equal(new WatchEvent(WatchEventType.NodeDataChanged, P("w")), await probe.NextAsync());
        await Store.DeleteAsync(P("w"));
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);
    }

    [Fact]
    public async Task Exists_watch_on_a_missing_node_fires_NodeCreated_once()
    {
        var writer = await NewSessionAsync();
        var probe = new WatchProbe();
        Assert.Null(await Store.ExistsAsync(P("later"), probe.Callback));
        await writer.CreateAsync(P("later"), [1]);
        Assert.Equal(new WatchEvent(WatchEventType.NodeCreated, P("later")), await probe.NextAsync());
        await writer.SetDataAsync(P("later"), [2]);
        await writer.DeleteAsync(P("later"));
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);
    }

    [Fact]
    public async Task Child_watch_fires_NodeChildrenChanged_once_per_arming_and_NodeDeleted_for_the_node()
    {
        await Store.CreateAsync(P("c"), []);
        var probe = new WatchProbe();
        await Store.GetChildrenAsync(P("c"), probe.Callback);

        await Store.SetDataAsync(P("c"), [1]); // not a child change
        await Store.CreateAsync(P("c/x"), []);
        Assert.Equal(new WatchEvent(WatchEventType.NodeChildrenChanged, P("c")), await probe.NextAsync());
        await Store.CreateAsync(P("c/y"), []);
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);

        await Store.GetChildrenAsync(P("c"), probe.Callback);
        await Store.SetDataAsync(P("c/x"), [1]); // not a child change of c either
        await Store.DeleteAsync(P("c/x"));
        Assert.Equal(new WatchEvent(WatchEventType.NodeChildrenChanged, P("c")), await probe.NextAsync());

        await Store.DeleteAsync(P("c/y"));
        await Store.GetChildrenAsync(P("c"), probe.Callback);
        await Store.DeleteAsync(P("c"));
        Assert.Equal(new WatchEvent(WatchEventType.NodeDeleted, P("c")), await probe.NextAsync());
        await SettleAsync(Store);
        Assert.Equal(3, probe.Count);
    }

    [Fact]
    public async Task The_same_delegate_registered_twice_fires_once()
    {
        await Store.CreateAsync(P("twice"), []);
        var probe = new WatchProbe();
        await Store.GetDataAsync(P("twice"), probe.Callback);
        await Store.ExistsAsync(P("twice"), probe.Callback);
        await Store.GetDataAsync(P("twice"), probe.Callback);
        await Store.SetDataAsync(P("twice"), [1]);
        Assert.Equal(WatchEventType.NodeDataChanged, (await probe.NextAsync()).Type);
        await SettleAsync(Store);
        Assert.Equal(1, probe.Count);

        // a data and a child watch with the same delegate: one NodeDeleted
        await Store.GetDataAsync(P("twice"), probe.Callback);
        await Store.GetChildrenAsync(P("twice"), probe.Callback);
        await Store.DeleteAsync(P("twice"));
        Assert.Equal(new WatchEvent(WatchEventType.NodeDeleted, P("twice")), await probe.NextAsync());
        await SettleAsync(Store);
        Assert.Equal(2, probe.Count);
    }

    [Fact]
    public async Task Different_delegates_on_the_same_path_each_fire()
    {
        await Store.CreateAsync(P("many"), []);
        var first = new WatchProbe();
        var second = new WatchProbe();
        await Store.GetDataAsync(P("many"), first.Callback);
        await Store.ExistsAsync(P("many"), second.Callback);
        await Store.SetDataAsync(P("many"), [1]);
        Assert.Equal(WatchEventType.NodeDataChanged, (await first.NextAsync()).Type);
        Assert.Equal(WatchEventType.NodeDataChanged, (await second.NextAsync()).Type);
    }

    [Fact]
    public async Task Watch_callbacks_do_not_run_inside_the_writing_call()
    {
        await Store.CreateAsync(P("async"), []);
        using var writeReturned = new ManualResetEventSlim();
        var sawReturn = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Store.GetDataAsync(P("async"), _ => sawReturn.TrySetResult(writeReturned.Wait(Deadline)));
        // If the callback ran inline, SetDataAsync would only return after the callback gave up waiting.
        await Store.SetDataAsync(P("async"), [1]);
        writeReturned.Set();
        Assert.True(await sawReturn.Task.WaitAsync(Deadline));
    }

    [Fact]
    public async Task A_throwing_watch_callback_does_not_break_the_store()
    {
        await Store.CreateAsync(P("boom"), []);
        var thrown = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await Store.GetDataAsync(P("boom"), _ =>
        {
            thrown.TrySetResult();
            throw new InvalidOperationException("watcher failure");
        });
        await Store.SetDataAsync(P("boom"), [1]);
        await thrown.Task.WaitAsync(Deadline);

        var probe = new WatchProbe();
        await Store.GetDataAsync(P("boom"), probe.Callback);
        await Store.SetDataAsync(P("boom"), [2]);
        Assert.Equal(WatchEventType.NodeDataChanged, (await probe.NextAsync()).Type);
        Assert.Equal(new byte[] { 2 }, (await Store.GetDataAsync(P("boom"))).Data);
    }

    [Fact]
    public async Task Events_of_one_session_arrive_in_commit_order()
    {
        await Store.CreateAsync(P("order"), []);
        var seen = Channel.CreateUnbounded<WatchEvent>();
        Action<WatchEvent> record = e => seen.Writer.TryWrite(e);
        await Store.ExistsAsync(P("order/a"), record);
        await Store.GetChildrenAsync(P("order"), e => seen.Writer.TryWrite(e));
        await Store.ExistsAsync(P("order"), e => seen.Writer.TryWrite(e));

        await Store.CreateAsync(P("order/a"), []);
        await Store.SetDataAsync(P("order"), [1]);

        var events = new List<WatchEvent>();
        for (int i = 0; i < 3; i++)
            events.Add(await seen.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        Assert.Equal(
            [
                new WatchEvent(WatchEventType.NodeCreated, P("order/a")),
                new WatchEvent(WatchEventType.NodeChildrenChanged, P("order")),
                new WatchEvent(WatchEventType.NodeDataChanged, P("order")),
            ],
            events);
    }

    // ================================================================= multi

    [Fact]
    public async Task Multi_applies_all_ops_against_the_evolving_state()
    {
        await Store.CreateAsync(P("m"), [0]);
        var results = await Store.MultiAsync(
        [
            new StoreOp.Create(P("m/parent"), [1]),
            new StoreOp.Create(P("m/parent/child"), [2]),
            new StoreOp.Create(P("m/parent/seq-"), [], CreateMode.PersistentSequential),
            new StoreOp.SetData(P("m/parent/child"), [3], 0),
            new StoreOp.Check(P("m/parent/child"), 1),
            new StoreOp.Check(P("m"), 0),
            new StoreOp.SetData(P("m"), [4]),
            new StoreOp.Delete(P("m/parent/seq-0000000001"), 0),
        ]);

        Assert.Equal(8, results.Count);
        Assert.Equal(new OpResult.Created(P("m/parent")), results[0]);
        Assert.Equal(new OpResult.Created(P("m/parent/child")), results[1]);
        Assert.Equal(new OpResult.Created(P("m/parent/seq-0000000001")), results[2]);
        var set = Assert.IsType<OpResult.DataSet>(results[3]);
        Assert.Equal(1, set.Stat.Version);
        Assert.IsType<OpResult.Checked>(results[4]);
        Assert.IsType<OpResult.Checked>(results[5]);
        Assert.IsType<OpResult.DataSet>(results[6]);
        Assert.IsType<OpResult.Deleted>(results[7]);

        var parent = await Store.GetDataAsync(P("m/parent"));
        var child = await Store.GetDataAsync(P("m/parent/child"));
        Assert.Equal(new byte[] { 3 }, child.Data);
        Assert.Equal(new byte[] { 4 }, (await Store.GetDataAsync(P("m"))).Data);
        Assert.Equal(["child"], (await Store.GetChildrenAsync(P("m/parent"))).Children);
        // one transaction: one zxid for everything it did
        Assert.Equal(parent.Stat.Czxid, child.Stat.Czxid);
        Assert.Equal(child.Stat.Czxid, child.Stat.Mzxid);
        Assert.Equal(parent.Stat.Czxid, parent.Stat.Pzxid);
        Assert.Equal(3, parent.Stat.Cversion);
    }

    [Fact]
    public async Task Failed_multi_changes_nothing_fires_nothing_and_names_the_failing_op()
    {
        await Store.CreateAsync(P("m"), [0]);
        await Store.SetDataAsync(P("m"), [1]); // version 1
        var before = await Store.GetDataAsync(P("m"));

        var created = new WatchProbe();
        var changed = new WatchProbe();
        var kids = new WatchProbe();
        Assert.Null(await Store.ExistsAsync(P("m/new"), created.Callback));
        await Store.GetDataAsync(P("m"), changed.Callback);
        await Store.GetChildrenAsync(P("m"), kids.Callback);

        var e = await Assert.ThrowsAsync<BadVersionException>(() => Store.MultiAsync(
        [
            new StoreOp.Create(P("m/new"), [1]),
            new StoreOp.Create(P("m/new/child"), [2]),
            new StoreOp.SetData(P("m"), [9]),
            new StoreOp.Check(P("m"), 1), // the SetData above made it 2
            new StoreOp.Create(P("m/never"), []),
        ]));
        Assert.Equal(3, e.FailedOpIndex);
        Assert.Equal(StoreErrorCode.BadVersion, e.Code);

        Assert.Null(await Store.ExistsAsync(P("m/new")));
        var after = await Store.GetDataAsync(P("m"));
        Assert.Equal(before.Data, after.Data);
        Assert.Equal(before.Stat, after.Stat);
        Assert.Empty((await Store.GetChildrenAsync(P("m"))).Children);

        await SettleAsync(Store);
        Assert.Equal(0, created.Count);
        Assert.Equal(0, changed.Count);
        Assert.Equal(0, kids.Count);

        // the watches are still armed
        await Store.CreateAsync(P("m/new"), []);
        Assert.Equal(new WatchEvent(WatchEventType.NodeCreated, P("m/new")), await created.NextAsync());
        Assert.Equal(new WatchEvent(WatchEventType.NodeChildrenChanged, P("m")), await kids.NextAsync());
    }

    [Fact]
    public async Task Failed_multi_reports_the_first_failing_op_with_its_exception_type()
    {
        await Store.CreateAsync(P("exists"), []);
        var e1 = await Assert.ThrowsAsync<NodeExistsException>(() => Store.MultiAsync(
        [
            new StoreOp.Create(P("fresh"), []),
            new StoreOp.Create(P("exists"), []),
        ]));
        Assert.Equal(1, e1.FailedOpIndex);
        Assert.Null(await Store.ExistsAsync(P("fresh")));

        var e2 = await Assert.ThrowsAsync<NoNodeException>(() => Store.MultiAsync(
        [
            new StoreOp.Check(P("missing"), -1),
        ]));
        Assert.Equal(0, e2.FailedOpIndex);

        await Store.CreateAsync(P("exists/child"), []);
        var e3 = await Assert.ThrowsAsync<NotEmptyException>(() => Store.MultiAsync(
        [
            new StoreOp.SetData(P("exists"), [1]),
            new StoreOp.Delete(P("exists")),
        ]));
        Assert.Equal(1, e3.FailedOpIndex);
        Assert.Equal(0, (await Store.ExistsAsync(P("exists")))!.Version);

        // a plain call failing is not a multi
        var single = await Assert.ThrowsAsync<NodeExistsException>(() => Store.CreateAsync(P("exists"), []));
        Assert.Equal(-1, single.FailedOpIndex);
    }

    [Fact]
    public async Task Multi_can_delete_and_recreate_a_node()
    {
        await Store.CreateAsync(P("swap"), [1]);
        var results = await Store.MultiAsync(
        [
            new StoreOp.Delete(P("swap"), 0),
            new StoreOp.Create(P("swap"), [2], CreateMode.Ephemeral),
        ]);
        Assert.Equal(2, results.Count);
        var got = await Store.GetDataAsync(P("swap"));
        Assert.Equal(new byte[] { 2 }, got.Data);
        Assert.Equal(Store.SessionId, got.Stat.EphemeralOwner);
        Assert.Equal(0, got.Stat.Version);
    }
}
