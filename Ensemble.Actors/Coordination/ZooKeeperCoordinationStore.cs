using Ensemble.ZooKeeper;
using ZkCreateMode = Ensemble.ZooKeeper.CreateMode;
using ZkOp = Ensemble.ZooKeeper.Op;
using ZkOpResult = Ensemble.ZooKeeper.OpResult;

namespace Ensemble.Coordination;

/// <summary>
/// The coordination store on a real ZooKeeper ensemble, through our own client (Ensemble.ZooKeeper).
/// One instance is one ZooKeeper session. Passes the same contract suite as the embedded store.
/// </summary>
public sealed class ZooKeeperCoordinationStore : ICoordinationStore
{
    private readonly ZooKeeperClient _client;
    // The same store watcher always maps to the same client watcher, so registering it twice fires it once.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Action<WatchEvent>, Action<WatchedEvent>> _watchers = new();
    private volatile bool _disposed;

    private ZooKeeperCoordinationStore(ZooKeeperClient client) => _client = client;

    /// <summary>Opens a session — a new one, or the saved one in <paramref name="options"/> if it is still alive.</summary>
    public static async Task<ZooKeeperCoordinationStore> ConnectAsync(ZooKeeperOptions options, Action<WatchedEvent>? connectionEvents = null) =>
        new(await ZooKeeperClient.ConnectAsync(options, connectionEvents));

    public ZooKeeperClient Client => _client;

    public long SessionId => _client.SessionId;

    public Task<string> CreateAsync(string path, byte[] data, CreateMode mode = CreateMode.Persistent)
    {
        var sequential = mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential;
        return Call(path, () => _client.CreateAsync(path, data, Acl.OpenUnsafe, Map(mode)), sequential);
    }

    public Task DeleteAsync(string path, int version = -1) =>
        Call(path, async () => { await _client.DeleteAsync(path, version); return true; });

    public Task<NodeStat?> ExistsAsync(string path, Action<WatchEvent>? watcher = null) =>
        Call(path, async () => await _client.ExistsAsync(path, Adapt(watcher)) is { } stat ? Map(stat) : null);

    public Task<NodeData> GetDataAsync(string path, Action<WatchEvent>? watcher = null) =>
        Call(path, async () =>
        {
            var (data, stat) = await _client.GetDataAsync(path, Adapt(watcher));
            return new NodeData(data ?? [], Map(stat));
        });

    public Task<NodeStat> SetDataAsync(string path, byte[] data, int version = -1) =>
        Call(path, async () => Map(await _client.SetDataAsync(path, data, version)));

    public Task<NodeChildren> GetChildrenAsync(string path, Action<WatchEvent>? watcher = null) =>
        Call(path, async () =>
        {
            var (children, stat) = await _client.GetChildrenAsync(path, Adapt(watcher));
            // ZooKeeper returns children in no particular order; the contract says ordinal.
            return new NodeChildren(children.Order(StringComparer.Ordinal).ToList(), Map(stat));
        });

    public async Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<StoreOp> ops)
    {
        for (var i = 0; i < ops.Count; i++)
        {
            if (ZnodePaths.Check(ops[i].Path, ops[i] is StoreOp.Create { Mode: CreateMode.PersistentSequential or CreateMode.EphemeralSequential }) is { } reason)
                throw new StoreException(StoreErrorCode.BadArguments, ops[i].Path, $"invalid path '{ops[i].Path}': {reason}") { FailedOpIndex = i };
        }
        var zkOps = ops.Select(op => op switch
        {
            StoreOp.Create c => (ZkOp)new ZkOp.Create(c.Path, c.Data, Acl.OpenUnsafe, Map(c.Mode)),
            StoreOp.Delete d => new ZkOp.Delete(d.Path, d.Version),
            StoreOp.SetData s => new ZkOp.SetData(s.Path, s.Data, s.Version),
            StoreOp.Check k => new ZkOp.Check(k.Path, k.Version),
            _ => throw new ArgumentOutOfRangeException(nameof(ops), op.GetType().Name, null),
        }).ToList();
        var results = await Call(ops.Count > 0 ? ops[0].Path : "/", () => _client.MultiAsync(zkOps), validate: false);
        return results.Select(r => r switch
        {
            ZkOpResult.Created c => (OpResult)new OpResult.Created(c.Path),
            ZkOpResult.Deleted => new OpResult.Deleted(),
            ZkOpResult.DataSet s => new OpResult.DataSet(Map(s.Stat)),
            ZkOpResult.Checked => new OpResult.Checked(),
            _ => throw new InvalidOperationException($"unexpected multi result {r}"),
        }).ToList();
    }

    public Task SyncAsync(string path) => Call(path, async () => { await _client.SyncAsync(path); return true; });

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        await _client.DisposeAsync();
    }

    private async Task<T> Call<T>(string path, Func<Task<T>> call, bool sequential = false, bool validate = true)
    {
        if (_disposed) throw new StoreException(StoreErrorCode.SessionExpired, path, "the session was closed");
        if (validate) ZnodePaths.Validate(path, sequential);
        try
        {
            return await call();
        }
        catch (KeeperException ex)
        {
            throw StoreException.For((StoreErrorCode)(int)ex.Code, ex.Path ?? path, ex.FailedOpIndex);
        }
        catch (ObjectDisposedException)
        {
            throw new StoreException(StoreErrorCode.SessionExpired, path, "the session was closed");
        }
    }

    private Action<WatchedEvent>? Adapt(Action<WatchEvent>? watcher) =>
        watcher is null ? null : _watchers.GetValue(watcher, AdaptNew);

    private static Action<WatchedEvent> AdaptNew(Action<WatchEvent> watcher)
    {
        return e =>
        {
            // Connection-state notices are not node events; the store's watchers only see node events.
            var type = e.Kind switch
            {
                WatchEventKind.NodeCreated => WatchEventType.NodeCreated,
                WatchEventKind.NodeDeleted => WatchEventType.NodeDeleted,
                WatchEventKind.NodeDataChanged => WatchEventType.NodeDataChanged,
                WatchEventKind.NodeChildrenChanged => WatchEventType.NodeChildrenChanged,
                _ => (WatchEventType?)null,
            };
            if (type is { } t && e.Path is { } p) watcher(new WatchEvent(t, p));
        };
    }

    private static ZkCreateMode Map(CreateMode mode) => mode switch
    {
        CreateMode.Persistent => ZkCreateMode.Persistent,
        CreateMode.Ephemeral => ZkCreateMode.Ephemeral,
        CreateMode.PersistentSequential => ZkCreateMode.PersistentSequential,
        CreateMode.EphemeralSequential => ZkCreateMode.EphemeralSequential,
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    private static NodeStat Map(Stat s) =>
        new(s.Czxid, s.Mzxid, s.Pzxid, s.Version, s.Cversion, s.EphemeralOwner, s.DataLength, s.NumChildren);
}
