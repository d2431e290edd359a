using System.Threading.Channels;

namespace Ensemble.Coordination;

/// <summary>
/// One session of an <see cref="EmbeddedCoordinationServer"/>. Calls complete synchronously (the returned
/// tasks are already finished); watch callbacks run later on this session's own serial dispatch loop,
/// in commit order, never inside the writer's call.
/// </summary>
internal sealed class EmbeddedSession : ICoordinationStore
{
    private readonly EmbeddedCoordinationServer server;
    private readonly Channel<(Action<WatchEvent> Callback, WatchEvent Event)> dispatch =
        Channel.CreateUnbounded<(Action<WatchEvent>, WatchEvent)>(new UnboundedChannelOptions { SingleReader = true });
    private volatile bool closed;

    public EmbeddedSession(EmbeddedCoordinationServer server, long sessionId)
    {
        this.server = server;
        SessionId = sessionId;
        _ = Task.Run(PumpAsync);
    }

    public long SessionId { get; }

    // The following are guarded by the server's lock.
    internal bool Closed { get => closed; set => closed = value; }
    internal HashSet<string> Ephemerals { get; } = new(StringComparer.Ordinal);
    internal HashSet<(string Path, bool IsChild)> WatchKeys { get; } = [];

    internal void Enqueue(Action<WatchEvent> callback, WatchEvent e) => dispatch.Writer.TryWrite((callback, e));

    internal void CompleteDispatch() => dispatch.Writer.TryComplete();

    private async Task PumpAsync()
    {
        await foreach (var (callback, e) in dispatch.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (closed) continue; // watches die with their session
            try { callback(e); }
            catch (Exception ex) { server.ReportWatcherException(e, ex); }
        }
    }

    private static Task<T> Run<T>(Func<T> call)
    {
        try { return Task.FromResult(call()); }
        catch (Exception e) { return Task.FromException<T>(e); }
    }

    private static Task Run(Action call)
    {
        try
        {
            call();
            return Task.CompletedTask;
        }
        catch (Exception e) { return Task.FromException(e); }
    }

    public Task<string> CreateAsync(string path, byte[] data, CreateMode mode = CreateMode.Persistent) =>
        Run(() => server.Create(this, path, data, mode));

    public Task DeleteAsync(string path, int version = -1) => Run(() => server.Delete(this, path, version));

    public Task<NodeStat?> ExistsAsync(string path, Action<WatchEvent>? watcher = null) =>
        Run(() => server.Exists(this, path, watcher));

    public Task<NodeData> GetDataAsync(string path, Action<WatchEvent>? watcher = null) =>
        Run(() => server.GetData(this, path, watcher));

    public Task<NodeStat> SetDataAsync(string path, byte[] data, int version = -1) =>
        Run(() => server.SetData(this, path, data, version));

    public Task<NodeChildren> GetChildrenAsync(string path, Action<WatchEvent>? watcher = null) =>
        Run(() => server.GetChildren(this, path, watcher));

    public Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<StoreOp> ops) => Run(() => server.Multi(this, ops));

    public Task SyncAsync(string path) => Run(() => server.Sync(this, path));

    public ValueTask DisposeAsync()
    {
        try
        {
            server.CloseSession(this);
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    public override string ToString() => $"EmbeddedSession(0x{SessionId:x})";
}
