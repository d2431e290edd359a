using Ensemble.Coordination;

namespace Ensemble.TestKit;

/// <summary>
/// A coordination store that is unreachable for a while, as a ZooKeeper ensemble that lost its quorum is:
/// while it lasts, every operation of every session of the environment fails with ConnectionLoss.
/// </summary>
public sealed class StoreOutage
{
    private volatile bool _active;
    private long _refused;

    /// <summary>How many operations the outage has refused so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public bool Active => _active;

    public void Begin() => _active = true;

    public void End() => _active = false;

    /// <summary>A session that fails while the outage lasts and otherwise is <paramref name="inner"/>.</summary>
    public ICoordinationStore Around(ICoordinationStore inner) => new Session(inner, this);

    /// <summary>The session under an outage wrapper (to look at what the backend itself reports), or the session itself.</summary>
    public static ICoordinationStore Unwrap(ICoordinationStore session) => session is Session wrapped ? wrapped.Inner : session;

    private sealed class Session(ICoordinationStore inner, StoreOutage outage) : ICoordinationStore
    {
        public ICoordinationStore Inner => inner;

        public long SessionId => inner.SessionId;

        private Task<T> Guard<T>(string path, Func<Task<T>> call)
        {
            if (!outage.Active) return call();
            Interlocked.Increment(ref outage._refused);
            return Task.FromException<T>(new StoreException(StoreErrorCode.ConnectionLoss, path, $"injected outage: the coordination store is unreachable ({path})"));
        }

        public Task<string> CreateAsync(string path, byte[] data, CreateMode mode = CreateMode.Persistent) => Guard(path, () => inner.CreateAsync(path, data, mode));

        public Task DeleteAsync(string path, int version = -1) => Guard(path, async () => { await inner.DeleteAsync(path, version); return true; });

        public Task<NodeStat?> ExistsAsync(string path, Action<WatchEvent>? watcher = null) => Guard(path, () => inner.ExistsAsync(path, watcher));

        public Task<NodeData> GetDataAsync(string path, Action<WatchEvent>? watcher = null) => Guard(path, () => inner.GetDataAsync(path, watcher));

        public Task<NodeStat> SetDataAsync(string path, byte[] data, int version = -1) => Guard(path, () => inner.SetDataAsync(path, data, version));

        public Task<NodeChildren> GetChildrenAsync(string path, Action<WatchEvent>? watcher = null) => Guard(path, () => inner.GetChildrenAsync(path, watcher));

        public Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<StoreOp> ops) => Guard(ops.FirstOrDefault()?.Path ?? "/", () => inner.MultiAsync(ops));

        public Task SyncAsync(string path) => Guard(path, async () => { await inner.SyncAsync(path); return true; });

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
