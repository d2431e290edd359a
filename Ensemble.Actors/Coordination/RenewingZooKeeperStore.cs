using Ensemble.ZooKeeper;

namespace Ensemble.Coordination;

/// <summary>
/// A ZooKeeper store that outlives its sessions. ZooKeeper ends a session its client could not reach for
/// longer than the session timeout (a host cut off, a long pause), and with it the ephemeral nodes the
/// session owned, such as an agent's presence; a client can never use that session again. This store then
/// opens a new session by itself — retrying with a capped backoff for as long as ZooKeeper stays out of
/// reach — and raises <see cref="Renewed"/>, so the owner re-creates what the old session owned.
/// Until the new session is open, calls fail with a <see cref="StoreException"/> (SessionExpired or
/// ConnectionLoss), which callers treat as the store being out of reach for a while.
/// </summary>
public sealed class RenewingZooKeeperStore : ICoordinationStore
{
    private readonly ZooKeeperOptions _options;
    private readonly Action<ZooKeeperCoordinationStore>? _opened;
    private readonly Action<string>? _log;
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();
    private ZooKeeperCoordinationStore _current;
    private Task? _renewing;

    private RenewingZooKeeperStore(ZooKeeperOptions options, Action<ZooKeeperCoordinationStore>? opened, Action<string>? log)
    {
        _options = options with { SessionId = 0, SessionPassword = null };
        _opened = opened;
        _log = log;
        _current = null!;
    }

    /// <summary>
    /// Opens the first session (the saved one in <paramref name="options"/> if it is still alive, else a new one).
    /// <paramref name="opened"/> is called with every session opened, the first too (e.g. to save its id).
    /// </summary>
    public static async Task<RenewingZooKeeperStore> ConnectAsync(ZooKeeperOptions options,
        Action<ZooKeeperCoordinationStore>? opened = null, Action<string>? log = null)
    {
        var store = new RenewingZooKeeperStore(options, opened, log);
        ZooKeeperCoordinationStore first;
        try
        {
            first = await ZooKeeperCoordinationStore.ConnectAsync(options, store.OnConnectionEvent);
        }
        catch (SessionExpiredException) when (options.SessionId != 0)
        {
            first = await ZooKeeperCoordinationStore.ConnectAsync(store._options, store.OnConnectionEvent);
        }
        store._current = first;
        opened?.Invoke(first);
        return store;
    }

    /// <summary>Raised (on a pool thread) after a new session replaced an expired one.</summary>
    public event Action<long>? Renewed;

    /// <summary>How many times a new session replaced an expired one.</summary>
    public int Renewals { get; private set; }

    public long SessionId => Current.SessionId;

    /// <summary>The client of the session in use now.</summary>
    public ZooKeeperClient Client => Current.Client;

    private ZooKeeperCoordinationStore Current
    {
        get { lock (_gate) return _current; }
    }

    private void OnConnectionEvent(WatchedEvent e)
    {
        if (e.State != ConnectionState.Expired) return;
        lock (_gate)
        {
            if (_closing.IsCancellationRequested || _renewing is { IsCompleted: false }) return;
            _renewing = Task.Run(RenewAsync);
        }
    }

    private async Task RenewAsync()
    {
        var expired = Current;
        _log?.Invoke($"ZooKeeper session 0x{expired.SessionId:x} expired; opening a new one");
        var wait = StoreTrouble.NextWait(TimeSpan.Zero);
        while (!_closing.IsCancellationRequested)
        {
            try
            {
                var next = await ZooKeeperCoordinationStore.ConnectAsync(_options, OnConnectionEvent);
                lock (_gate)
                {
                    if (_closing.IsCancellationRequested)
                    {
                        _ = next.DisposeAsync().AsTask();
                        return;
                    }
                    _current = next;
                    Renewals++;
                }
                _ = expired.DisposeAsync().AsTask();
                _opened?.Invoke(next);
                _log?.Invoke($"ZooKeeper session 0x{next.SessionId:x} replaces the expired 0x{expired.SessionId:x}");
                Renewed?.Invoke(next.SessionId);
                return;
            }
            catch (Exception ex) when (ex is KeeperException or IOException or TimeoutException or System.Net.Sockets.SocketException)
            {
                _log?.Invoke($"ZooKeeper is still out of reach ({ex.Message}); trying again in {wait.TotalSeconds:0.##} s");
            }
            try { await Task.Delay(wait, _closing.Token); }
            catch (OperationCanceledException) { return; }
            wait = StoreTrouble.NextWait(wait);
        }
    }

    public Task<string> CreateAsync(string path, byte[] data, CreateMode mode = CreateMode.Persistent) => Current.CreateAsync(path, data, mode);

    public Task DeleteAsync(string path, int version = -1) => Current.DeleteAsync(path, version);

    public Task<NodeStat?> ExistsAsync(string path, Action<WatchEvent>? watcher = null) => Current.ExistsAsync(path, watcher);

    public Task<NodeData> GetDataAsync(string path, Action<WatchEvent>? watcher = null) => Current.GetDataAsync(path, watcher);

    public Task<NodeStat> SetDataAsync(string path, byte[] data, int version = -1) => Current.SetDataAsync(path, data, version);

    public Task<NodeChildren> GetChildrenAsync(string path, Action<WatchEvent>? watcher = null) => Current.GetChildrenAsync(path, watcher);

    public Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<StoreOp> ops) => Current.MultiAsync(ops);

    public Task SyncAsync(string path) => Current.SyncAsync(path);

    public async ValueTask DisposeAsync()
    {
        Task? renewing;
        lock (_gate)
        {
            if (_closing.IsCancellationRequested) return;
            _closing.Cancel();
            renewing = _renewing;
        }
        if (renewing is not null)
        {
            try { await renewing; }
            catch (Exception) { /* closing anyway */ }
        }
        await Current.DisposeAsync();
        _closing.Dispose();
    }
}
