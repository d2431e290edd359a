using System.Net.Sockets;
using System.Threading.Channels;

namespace Ensemble.ZooKeeper;

/// <summary>
/// A ZooKeeper session over one pipelined TCP connection at a time. Thread-safe. Reconnects to the next
/// server on connection loss (resuming the session, re-sending auth and armed watches); never creates a new
/// session by itself: once the server says the session expired, every call throws <see cref="SessionExpiredException"/>.
/// </summary>
public sealed class ZooKeeperClient : IAsyncDisposable
{
    private const int SetWatchesChunkBytes = 128 * 1024;

    private readonly ZooKeeperOptions _options;
    private readonly Action<WatchedEvent>? _defaultWatcher;
    private readonly List<string> _servers;
    private readonly Channel<Packet> _outgoing = Channel.CreateUnbounded<Packet>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    private readonly Channel<(WatchedEvent Event, Action<WatchedEvent>[] Targets)> _events =
        Channel.CreateUnbounded<(WatchedEvent, Action<WatchedEvent>[])>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _firstConnect = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closeCts = new();

    private readonly Lock _watchLock = new();
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _dataWatches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _existWatches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _childWatches = new(StringComparer.Ordinal);

    private readonly Lock _authLock = new();
    private readonly List<AuthInfo> _auth;

    private readonly Lock _closeLock = new();
    private Task? _closeTask;
    private volatile bool _closing;

    private volatile int _state = (int)ConnectionState.Connecting;
    private long _sessionId;
    private byte[] _password;
    private int _negotiatedTimeoutMs;
    private long _lastZxid;
    private int _xid;
    private volatile Connection? _connection;
    private Exception? _lastConnectError;
    private Task _managerTask = Task.CompletedTask;
    private Task _dispatchTask = Task.CompletedTask;

    private ZooKeeperClient(ZooKeeperOptions options, Action<WatchedEvent>? defaultWatcher)
    {
        _options = options;
        _defaultWatcher = defaultWatcher;
        _servers = ParseConnectionString(options.ConnectionString);
        _sessionId = options.SessionId;
        _password = options.SessionPassword is { } p ? (byte[])p.Clone() : new byte[16];
        _auth = [.. options.Auth];
    }

    /// <summary>
    /// Connects (or resumes the session in <paramref name="options"/>) and returns once the session is established.
    /// Throws <see cref="ConnectionLossException"/> when no server answers within ConnectTimeout and
    /// <see cref="SessionExpiredException"/> when the session to resume has expired (or the password is wrong).
    /// </summary>
    public static async Task<ZooKeeperClient> ConnectAsync(ZooKeeperOptions options, Action<WatchedEvent>? defaultWatcher = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SessionTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "SessionTimeout must be positive.");
        var client = new ZooKeeperClient(options, defaultWatcher);
        client._dispatchTask = Task.Run(client.DispatchLoopAsync, CancellationToken.None);
        client._managerTask = Task.Run(client.ManagerLoopAsync, CancellationToken.None);
        try
        {
            await client._firstConnect.Task.WaitAsync(options.ConnectTimeout, ct).ConfigureAwait(false);
            return client;
        }
        catch (TimeoutException)
        {
            var last = client._lastConnectError;
            await client.CloseAsync().ConfigureAwait(false);
            throw new ConnectionLossException(null,
                $"Could not connect to ZooKeeper at {options.ConnectionString} within {options.ConnectTimeout}" +
                (last is null ? "." : $": {last.Message}"), last);
        }
        catch
        {
            await client.CloseAsync().ConfigureAwait(false);
            throw;
        }
    }

    public long SessionId => Interlocked.Read(ref _sessionId);
    public byte[] SessionPassword => (byte[])Volatile.Read(ref _password).Clone();
    public TimeSpan NegotiatedTimeout => TimeSpan.FromMilliseconds(Volatile.Read(ref _negotiatedTimeoutMs));
    public ConnectionState State => (ConnectionState)_state;

    /// <summary>"host:port" of the server currently connected to; null while disconnected.</summary>
    public string? ConnectedServer => _connection?.Server;

    /// <summary>Highest zxid seen in a reply.</summary>
    public long LastZxid => Interlocked.Read(ref _lastZxid);

    // ------------------------------------------------------------------ operations

    public Task<string> CreateAsync(string path, byte[] data, IReadOnlyList<Acl> acl, CreateMode mode)
    {
        ValidatePath(path, sequential: mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential);
        ArgumentNullException.ThrowIfNull(acl);
        var w = Request(OpCodes.Create);
        w.String(path);
        w.Buffer(data, data is null);
        w.Acls(acl);
        w.Int((int)mode);
        return Submit(new Packet<string>(w.ToFrame(), OpCodes.Create, path,
            (int err, ref JuteReader r) => err == 0 ? r.String() ?? path : throw KeeperException.Create(err, path)));
    }

    public Task DeleteAsync(string path, int version = -1)
    {
        ValidatePath(path);
        var w = Request(OpCodes.Delete);
        w.String(path);
        w.Int(version);
        return Submit(new Packet<bool>(w.ToFrame(), OpCodes.Delete, path, OkOrThrow(path)));
    }

    /// <summary>The node's Stat, or null when it does not exist. A watcher is armed in both cases.</summary>
    public Task<Stat?> ExistsAsync(string path, Action<WatchedEvent>? watcher = null)
    {
        ValidatePath(path);
        var w = Request(OpCodes.Exists);
        w.String(path);
        w.Bool(watcher is not null);
        return Submit(new Packet<Stat?>(w.ToFrame(), OpCodes.Exists, path,
            (int err, ref JuteReader r) => err switch
            {
                0 => r.Stat(),
                (int)KeeperErrorCode.NoNode => null,
                _ => throw KeeperException.Create(err, path),
            })
        { WatchKind = watcher is null ? null : WatchKind.Exist, Watcher = watcher });
    }

    public Task<(byte[] Data, Stat Stat)> GetDataAsync(string path, Action<WatchedEvent>? watcher = null)
    {
        ValidatePath(path);
        var w = Request(OpCodes.GetData);
        w.String(path);
        w.Bool(watcher is not null);
        return Submit(new Packet<(byte[], Stat)>(w.ToFrame(), OpCodes.GetData, path,
            (int err, ref JuteReader r) => err == 0 ? (r.Buffer() ?? [], r.Stat()) : throw KeeperException.Create(err, path))
        { WatchKind = watcher is null ? null : WatchKind.Data, Watcher = watcher });
    }

    public Task<Stat> SetDataAsync(string path, byte[] data, int version = -1)
    {
        ValidatePath(path);
        var w = Request(OpCodes.SetData);
        w.String(path);
        w.Buffer(data, data is null);
        w.Int(version);
        return Submit(new Packet<Stat>(w.ToFrame(), OpCodes.SetData, path,
            (int err, ref JuteReader r) => err == 0 ? r.Stat() : throw KeeperException.Create(err, path)));
    }

    /// <summary>Child names (relative) and the parent's Stat (getChildren2).</summary>
    public Task<(IReadOnlyList<string> Children, Stat Stat)> GetChildrenAsync(string path, Action<WatchedEvent>? watcher = null)
    {
        ValidatePath(path);
        var w = Request(OpCodes.GetChildren2);
        w.String(path);
        w.Bool(watcher is not null);
        return Submit(new Packet<(IReadOnlyList<string>, Stat)>(w.ToFrame(), OpCodes.GetChildren2, path,
            (int err, ref JuteReader r) => err == 0 ? (r.Strings(), r.Stat()) : throw KeeperException.Create(err, path))
        { WatchKind = watcher is null ? null : WatchKind.Child, Watcher = watcher });
    }

    /// <summary>
    /// Applies all operations atomically. On failure nothing is applied and the first failing operation's
    /// <see cref="KeeperException"/> is thrown with <see cref="KeeperException.FailedOpIndex"/> set.
    /// </summary>
    public Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<Op> ops)
    {
        ArgumentNullException.ThrowIfNull(ops);
        var w = Request(OpCodes.Multi);
        foreach (var op in ops)
        {
            switch (op)
            {
                case Op.Create c:
                    ValidatePath(c.Path, c.Mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential);
                    MultiHeader(w, OpCodes.Create);
                    w.String(c.Path); w.Buffer(c.Data, c.Data is null); w.Acls(c.Acl); w.Int((int)c.Mode);
                    break;
                case Op.Delete d:
                    ValidatePath(d.Path);
                    MultiHeader(w, OpCodes.Delete);
                    w.String(d.Path); w.Int(d.Version);
                    break;
                case Op.SetData s:
                    ValidatePath(s.Path);
                    MultiHeader(w, OpCodes.SetData);
                    w.String(s.Path); w.Buffer(s.Data, s.Data is null); w.Int(s.Version);
                    break;
                case Op.Check k:
                    ValidatePath(k.Path);
                    MultiHeader(w, OpCodes.Check);
                    w.String(k.Path); w.Int(k.Version);
                    break;
                default:
                    throw new ArgumentException($"Unsupported operation {op?.GetType().Name ?? "null"}.", nameof(ops));
            }
        }
        w.Int(-1); w.Bool(true); w.Int(-1);
        var opsCopy = ops.ToArray();
        return Submit(new Packet<IReadOnlyList<OpResult>>(w.ToFrame(), OpCodes.Multi, opsCopy.FirstOrDefault()?.Path,
            (int err, ref JuteReader r) => ParseMulti(err, ref r, opsCopy)));
    }

    private static void MultiHeader(JuteWriter w, int type)
    {
        w.Int(type);
        w.Bool(false);
        w.Int(-1);
    }

    private static IReadOnlyList<OpResult> ParseMulti(int err, ref JuteReader r, Op[] ops)
    {
        if (err != 0) throw KeeperException.Create(err, ops.FirstOrDefault()?.Path);
        var results = new List<OpResult>(ops.Length);
        int failedCode = 0, failedIndex = -1;
        for (var i = 0; ; i++)
        {
            var type = r.Int();
            var done = r.Bool();
            var headerErr = r.Int();
            if (done) break;
            var path = i < ops.Length ? ops[i].Path : null;
            switch (type)
            {
                case OpCodes.Create: results.Add(new OpResult.Created(r.String() ?? path ?? "")); break;
                case OpCodes.Create2:
                    var created = r.String() ?? path ?? "";
                    r.Stat();
                    results.Add(new OpResult.Created(created));
                    break;
                case OpCodes.Delete: results.Add(new OpResult.Deleted()); break;
                case OpCodes.SetData: results.Add(new OpResult.DataSet(r.Stat())); break;
                case OpCodes.Check: results.Add(new OpResult.Checked()); break;
                case OpCodes.Error:
                    var code = r.Int();
                    if (code != 0 && failedIndex < 0)
                    {
                        failedCode = code;
                        failedIndex = i;
                    }
                    break;
                default:
                    throw new KeeperException(KeeperErrorCode.MarshallingError, path, $"Unexpected multi result type {type} (err {headerErr}).");
            }
        }
        if (failedIndex >= 0)
        {
            var ex = KeeperException.Create(failedCode, failedIndex < ops.Length ? ops[failedIndex].Path : null);
            ex.FailedOpIndex = failedIndex;
            throw ex;
        }
        return results;
    }

    /// <summary>Waits until the connected server has caught up with the leader for <paramref name="path"/>.</summary>
    public Task SyncAsync(string path)
    {
        ValidatePath(path);
        var w = Request(OpCodes.Sync);
        w.String(path);
        return Submit(new Packet<bool>(w.ToFrame(), OpCodes.Sync, path, OkOrThrow(path)));
    }

    /// <summary>Authenticates this session; the auth is re-sent after every reconnect. Throws AuthFailedException if rejected.</summary>
    public Task AddAuthAsync(AuthInfo auth)
    {
        ArgumentNullException.ThrowIfNull(auth);
        if (_closing) return Task.FromException(new ObjectDisposedException(nameof(ZooKeeperClient)));
        lock (_authLock) _auth.Add(auth);
        return Submit(new Packet<bool>(AuthFrame(auth), OpCodes.Auth, null, (int err, ref JuteReader _) =>
        {
            if (err == 0) return true;
            lock (_authLock) _auth.Remove(auth);
            throw KeeperException.Create(err, null);
        }));
    }

    public Task<(IReadOnlyList<Acl> Acl, Stat Stat)> GetAclAsync(string path)
    {
        ValidatePath(path);
        var w = Request(OpCodes.GetAcl);
        w.String(path);
        return Submit(new Packet<(IReadOnlyList<Acl>, Stat)>(w.ToFrame(), OpCodes.GetAcl, path,
            (int err, ref JuteReader r) => err == 0 ? (r.Acls(), r.Stat()) : throw KeeperException.Create(err, path)));
    }

    public Task<Stat> SetAclAsync(string path, IReadOnlyList<Acl> acl, int version = -1)
    {
        ValidatePath(path);
        ArgumentNullException.ThrowIfNull(acl);
        var w = Request(OpCodes.SetAcl);
        w.String(path);
        w.Acls(acl);
        w.Int(version);
        return Submit(new Packet<Stat>(w.ToFrame(), OpCodes.SetAcl, path,
            (int err, ref JuteReader r) => err == 0 ? r.Stat() : throw KeeperException.Create(err, path)));
    }

    /// <summary>Ends the session (its ephemeral nodes go at once) and closes the client. Idempotent.</summary>
    public Task CloseAsync()
    {
        lock (_closeLock) return _closeTask ??= CloseCoreAsync(endSession: true);
    }

    /// <summary>
    /// Closes the connection WITHOUT ending the session, as a crashed process would: the session and its
    /// ephemeral nodes live on until the session timeout, and another client can resume it with
    /// <see cref="SessionId"/> and <see cref="SessionPassword"/>. Idempotent (no-op after CloseAsync).
    /// </summary>
    public Task AbandonAsync()
    {
        lock (_closeLock) return _closeTask ??= CloseCoreAsync(endSession: false);
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    // ------------------------------------------------------------------ plumbing

    private static JuteWriter Request(int opCode)
    {
        var w = new JuteWriter();
        w.Int(0); // xid, filled in when written
        w.Int(opCode);
        return w;
    }

    private static ReplyParser<bool> OkOrThrow(string path)
        => (int err, ref JuteReader _) => err == 0 ? true : throw KeeperException.Create(err, path);

    private static byte[] AuthFrame(AuthInfo auth)
    {
        var w = new JuteWriter();
        w.Int(Xids.Auth);
        w.Int(OpCodes.Auth);
        w.Int(0);
        w.String(auth.Scheme);
        w.Buffer(auth.Auth);
        return w.ToFrame();
    }

    private static void ValidatePath(string path, bool sequential = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0 || path[0] != '/')
            throw new ArgumentException($"Path must start with '/': '{path}'.", nameof(path));
        if (path.Length > 1 && path[^1] == '/' && !sequential)
            throw new ArgumentException($"Path must not end with '/': '{path}'.", nameof(path));
        if (path.Contains("//", StringComparison.Ordinal) || path.Contains('\0'))
            throw new ArgumentException($"Invalid path '{path}'.", nameof(path));
    }

    private static List<string> ParseConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        if (connectionString.Contains('/'))
            throw new ArgumentException("Chroot suffixes are not supported in the connection string.", nameof(connectionString));
        var servers = new List<string>();
        foreach (var part in connectionString.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.LastIndexOf(':');
            var endpoint = colon < 0 || part.EndsWith(']') ? part + ":2181" : part;
            if (!int.TryParse(endpoint[(endpoint.LastIndexOf(':') + 1)..], out var port) || port is <= 0 or > 65535)
                throw new ArgumentException($"Bad server address '{part}'.", nameof(connectionString));
            servers.Add(endpoint);
        }
        if (servers.Count == 0) throw new ArgumentException("No servers in the connection string.", nameof(connectionString));
        return servers;
    }

    private static (string Host, int Port) SplitEndpoint(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        var host = endpoint[..colon].Trim('[', ']');
        return (host, int.Parse(endpoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private Task<T> Submit<T>(Packet<T> packet)
    {
        if (State == ConnectionState.Expired)
            return Task.FromException<T>(new SessionExpiredException(packet.Path));
        if (_closing)
            return Task.FromException<T>(new ObjectDisposedException(nameof(ZooKeeperClient)));
        if (!_outgoing.Writer.TryWrite(packet))
            return Task.FromException<T>(State == ConnectionState.Expired
                ? new SessionExpiredException(packet.Path)
                : new ObjectDisposedException(nameof(ZooKeeperClient)));
        return packet.Task;
    }

    private void FailQueued(Func<Packet, Exception> error)
    {
        while (_outgoing.Reader.TryRead(out var p)) p.Fail(error(p));
    }

    private async Task ManagerLoopAsync()
    {
        var index = Random.Shared.Next(_servers.Count);
        var token = _closeCts.Token;
        while (!_closing)
        {
            Connection? connection = null;
            var attemptTimeout = TimeSpan.FromTicks(Math.Max(_options.ConnectTimeout.Ticks / _servers.Count, TimeSpan.FromMilliseconds(250).Ticks));
            for (var i = 0; i < _servers.Count && connection is null && !_closing; i++)
            {
                var server = _servers[index];
                index = (index + 1) % _servers.Count;
                SetState(ConnectionState.Connecting);
                try
                {
                    connection = await HandshakeAsync(server, attemptTimeout, token).ConfigureAwait(false);
                }
                catch (SessionExpiredException e)
                {
                    Expire(e);
                    return;
                }
                catch (Exception e)
                {
                    _lastConnectError = e;
                }
            }
            if (_closing)
            {
                connection?.Close(new ObjectDisposedException(nameof(ZooKeeperClient)));
                break;
            }
            if (connection is null)
            {
                FailQueued(p => new ConnectionLossException(p.Path,
                    $"No ZooKeeper server reachable: {_lastConnectError?.Message}", _lastConnectError));
                try { await Task.Delay(Random.Shared.Next(50, 250), token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
                continue;
            }

            _connection = connection;
            SetState(ConnectionState.SyncConnected);
            PostStateEvent(ConnectionState.SyncConnected, clearWatches: false);
            _firstConnect.TrySetResult();
            var reader = Task.Run(() => ReadLoopAsync(connection), CancellationToken.None);
            var writer = Task.Run(() => WriteLoopAsync(connection), CancellationToken.None);
            var pinger = Task.Run(() => PingLoopAsync(connection), CancellationToken.None);
            if (_closing) connection.Close(new ObjectDisposedException(nameof(ZooKeeperClient)));
            await connection.Completion.ConfigureAwait(false);
            await Task.WhenAll(reader, writer, pinger).ConfigureAwait(false);
            _connection = null;
            if (_closing) break;
            SetState(ConnectionState.Disconnected);
            PostStateEvent(ConnectionState.Disconnected, clearWatches: false);
            FailQueued(p => new ConnectionLossException(p.Path, $"Connection to {connection.Server} lost.", null));
        }
    }

    private void SetState(ConnectionState state)
    {
        // Expired and Closed are final.
        while (true)
        {
            var current = _state;
            if (current is (int)ConnectionState.Expired or (int)ConnectionState.Closed) return;
            if (Interlocked.CompareExchange(ref _state, (int)state, current) == current) return;
        }
    }

    private void Expire(Exception reason)
    {
        SetState(ConnectionState.Expired);
        _outgoing.Writer.TryComplete();
        FailQueued(p => new SessionExpiredException(p.Path));
        PostStateEvent(ConnectionState.Expired, clearWatches: true);
        _firstConnect.TrySetException(reason);
    }

    private async Task<Connection> HandshakeAsync(string server, TimeSpan timeout, CancellationToken closeToken)
    {
        var (host, port) = SplitEndpoint(server);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(closeToken);
        cts.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: false);
            var w = new JuteWriter();
            w.Int(0); // protocol version
            w.Long(Interlocked.Read(ref _lastZxid));
            w.Int((int)Math.Min(int.MaxValue, _options.SessionTimeout.TotalMilliseconds));
            w.Long(Interlocked.Read(ref _sessionId));
            w.Buffer(Volatile.Read(ref _password));
            w.Bool(false); // readOnly
            await stream.WriteAsync(w.ToFrame(), cts.Token).ConfigureAwait(false);

            var frameReader = new FrameReader(stream);
            var frame = await frameReader.ReadFrameAsync(cts.Token).ConfigureAwait(false);
            int timeoutMs;
            long sessionId;
            byte[] password;
            {
                var r = new JuteReader(frame);
                r.Int(); // protocol version
                timeoutMs = r.Int();
                sessionId = r.Long();
                password = r.Buffer() ?? new byte[16];
            }
            if (timeoutMs <= 0)
            {
                socket.Dispose();
                throw new SessionExpiredException(null,
                    $"ZooKeeper session 0x{Interlocked.Read(ref _sessionId):x} has expired (or its password is wrong); server {server}.");
            }
            Interlocked.Exchange(ref _sessionId, sessionId);
            Volatile.Write(ref _password, password);
            Volatile.Write(ref _negotiatedTimeoutMs, timeoutMs);

            var connection = new Connection(socket, stream, frameReader, server, timeoutMs);
            // Before any user request: auth packets, then the armed watches.
            var frames = new List<byte[]>();
            AuthInfo[] auths;
            lock (_authLock) auths = [.. _auth];
            var xid = 0;
            foreach (var auth in auths)
            {
                var packet = new ControlPacket(AuthFrame(auth), OpCodes.Auth);
                connection.Admit(packet, ref xid);
                frames.Add(packet.Frame);
            }
            frames.AddRange(SetWatchesFrames());
            if (frames.Count > 0)
            {
                var all = new byte[frames.Sum(f => f.Length)];
                var offset = 0;
                foreach (var f in frames) { f.CopyTo(all, offset); offset += f.Length; }
                await stream.WriteAsync(all, cts.Token).ConfigureAwait(false);
            }
            connection.LastSend = Environment.TickCount64;
            return connection;
        }
        catch (OperationCanceledException) when (!closeToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new TimeoutException($"Connecting to {server} timed out after {timeout}.");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private List<byte[]> SetWatchesFrames()
    {
        string[] data, exist, child;
        lock (_watchLock)
        {
            data = [.. _dataWatches.Keys];
            exist = [.. _existWatches.Keys];
            child = [.. _childWatches.Keys];
        }
        var frames = new List<byte[]>();
        if (data.Length + exist.Length + child.Length == 0) return frames;
        var relativeZxid = Interlocked.Read(ref _lastZxid);
        int di = 0, ei = 0, ci = 0;
        while (di < data.Length || ei < exist.Length || ci < child.Length)
        {
            var budget = SetWatchesChunkBytes;
            var d = Take(data, ref di, ref budget);
            var e = Take(exist, ref ei, ref budget);
            var c = Take(child, ref ci, ref budget);
            var w = new JuteWriter();
            w.Int(Xids.SetWatches);
            w.Int(OpCodes.SetWatches);
            w.Long(relativeZxid);
            w.Strings(d);
            w.Strings(e);
            w.Strings(c);
            frames.Add(w.ToFrame());
        }
        return frames;

        static List<string> Take(string[] source, ref int index, ref int budget)
        {
            var list = new List<string>();
            while (index < source.Length && (budget > 0 || list.Count == 0))
            {
                budget -= source[index].Length * 3 + 4;
                list.Add(source[index++]);
            }
            return list;
        }
    }

    private async Task WriteLoopAsync(Connection connection)
    {
        var buffer = new byte[64 * 1024];
        var reader = _outgoing.Reader;
        try
        {
            while (await reader.WaitToReadAsync(connection.Token).ConfigureAwait(false))
            {
                var length = 0;
                while (length < buffer.Length && reader.TryRead(out var packet))
                {
                    if (!connection.Admit(packet, ref _xid))
                    {
                        packet.Fail(new ConnectionLossException(packet.Path, $"Connection to {connection.Server} lost."));
                        continue;
                    }
                    var frame = packet.Frame;
                    if (length + frame.Length > buffer.Length)
                    {
                        if (length > 0)
                        {
                            await connection.Stream.WriteAsync(buffer.AsMemory(0, length), connection.Token).ConfigureAwait(false);
                            length = 0;
                        }
                        if (frame.Length > buffer.Length)
                        {
                            await connection.Stream.WriteAsync(frame, connection.Token).ConfigureAwait(false);
                            continue;
                        }
                    }
                    frame.CopyTo(buffer, length);
                    length += frame.Length;
                }
                if (length > 0)
                    await connection.Stream.WriteAsync(buffer.AsMemory(0, length), connection.Token).ConfigureAwait(false);
                Volatile.Write(ref connection.LastSend, Environment.TickCount64);
            }
        }
        catch (Exception e)
        {
            connection.Close(e);
        }
    }

    private async Task ReadLoopAsync(Connection connection)
    {
        try
        {
            while (true)
            {
                var frame = await connection.Reader.ReadFrameAsync(connection.Token).ConfigureAwait(false);
                HandleFrame(connection, frame);
            }
        }
        catch (Exception e)
        {
            connection.Close(e);
        }
    }

    private void HandleFrame(Connection connection, ReadOnlySpan<byte> frame)
    {
        var r = new JuteReader(frame);
        var xid = r.Int();
        var zxid = r.Long();
        var err = r.Int();
        switch (xid)
        {
            case Xids.Ping:
            case Xids.SetWatches:
                return;
            case Xids.Notification:
                var type = r.Int();
                r.Int(); // keeper state
                var path = r.String();
                OnNotification((WatchEventKind)type, path);
                return;
            case Xids.Auth:
                connection.NextAuth()?.Complete(err, ref r);
                return;
        }
        var packet = connection.NextPending()
            ?? throw new IOException($"Reply with xid {xid} but no request is pending.");
        if (packet.Xid != xid)
        {
            packet.Fail(new ConnectionLossException(packet.Path, $"Reply xid {xid} does not match request xid {packet.Xid}."));
            throw new IOException($"Reply xid {xid} out of order (expected {packet.Xid}).");
        }
        if (zxid > 0)
        {
            var seen = Interlocked.Read(ref _lastZxid);
            while (zxid > seen)
            {
                var previous = Interlocked.CompareExchange(ref _lastZxid, zxid, seen);
                if (previous == seen) break;
                seen = previous;
            }
        }
        if (packet.WatchKind is { } kind && packet.Watcher is { } watcher && packet.Path is { } watchPath)
        {
            Dictionary<string, HashSet<Action<WatchedEvent>>>? table = kind switch
            {
                WatchKind.Data when err == 0 => _dataWatches,
                WatchKind.Child when err == 0 => _childWatches,
                WatchKind.Exist when err == 0 => _dataWatches,
                WatchKind.Exist when err == (int)KeeperErrorCode.NoNode => _existWatches,
                _ => null,
            };
            if (table is not null)
            {
                lock (_watchLock)
                {
                    if (!table.TryGetValue(watchPath, out var set)) table[watchPath] = set = [];
                    set.Add(watcher);
                }
            }
        }
        packet.Complete(err, ref r);
    }

    private void OnNotification(WatchEventKind kind, string? path)
    {
        if (path is null) return;
        var targets = new HashSet<Action<WatchedEvent>>();
        lock (_watchLock)
        {
            switch (kind)
            {
                case WatchEventKind.NodeCreated:
                case WatchEventKind.NodeDataChanged:
                    Move(_dataWatches, path, targets);
                    Move(_existWatches, path, targets);
                    break;
                case WatchEventKind.NodeChildrenChanged:
                    Move(_childWatches, path, targets);
                    break;
                case WatchEventKind.NodeDeleted:
                    Move(_dataWatches, path, targets);
                    Move(_existWatches, path, targets);
                    Move(_childWatches, path, targets);
                    break;
            }
        }
        if (targets.Count > 0)
            _events.Writer.TryWrite((new WatchedEvent(kind, ConnectionState.SyncConnected, path), [.. targets]));

        static void Move(Dictionary<string, HashSet<Action<WatchedEvent>>> table, string path, HashSet<Action<WatchedEvent>> into)
        {
            if (table.Remove(path, out var set)) into.UnionWith(set);
        }
    }

    private void PostStateEvent(ConnectionState state, bool clearWatches, bool defaultOnly = false)
    {
        var targets = new HashSet<Action<WatchedEvent>>();
        if (!defaultOnly)
        {
            lock (_watchLock)
            {
                foreach (var table in new[] { _dataWatches, _existWatches, _childWatches })
                {
                    foreach (var set in table.Values) targets.UnionWith(set);
                    if (clearWatches) table.Clear();
                }
            }
        }
        if (_defaultWatcher is not null) targets.Add(_defaultWatcher);
        if (targets.Count > 0)
            _events.Writer.TryWrite((new WatchedEvent(WatchEventKind.None, state, null), [.. targets]));
    }

    private async Task PingLoopAsync(Connection connection)
    {
        var timeoutMs = connection.TimeoutMs;
        var pingInterval = timeoutMs / 3;
        var readTimeout = timeoutMs * 2 / 3;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(timeoutMs / 15, 10, 500)));
        var ping = new JuteWriter();
        ping.Int(Xids.Ping);
        ping.Int(OpCodes.Ping);
        var pingFrame = ping.ToFrame();
        try
        {
            while (await timer.WaitForNextTickAsync(connection.Token).ConfigureAwait(false))
            {
                var now = Environment.TickCount64;
                if (now - connection.Reader.LastReceive > readTimeout)
                {
                    connection.Close(new TimeoutException($"Nothing received from {connection.Server} for {readTimeout} ms."));
                    return;
                }
                if (now - Volatile.Read(ref connection.LastSend) >= pingInterval)
                {
                    Volatile.Write(ref connection.LastSend, now);
                    _outgoing.Writer.TryWrite(new ControlPacket(pingFrame, OpCodes.Ping));
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) { connection.Close(e); }
    }

    private async Task DispatchLoopAsync()
    {
        await foreach (var (e, targets) in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            foreach (var target in targets)
            {
                try { target(e); }
                catch { /* a watcher's failure must not stop delivery to the others */ }
            }
        }
    }

    private async Task CloseCoreAsync(bool endSession)
    {
        await Task.Yield();
        var connection = _connection;
        var wasConnected = endSession && State == ConnectionState.SyncConnected && connection is not null;
        _closing = true;
        if (wasConnected)
        {
            var w = Request(OpCodes.CloseSession);
            var packet = new Packet<bool>(w.ToFrame(), OpCodes.CloseSession, null, (int _, ref JuteReader _) => true);
            if (_outgoing.Writer.TryWrite(packet))
            {
                var wait = TimeSpan.FromMilliseconds(Math.Clamp(Volatile.Read(ref _negotiatedTimeoutMs), 1000, 5000));
                try { await packet.Task.WaitAsync(wait).ConfigureAwait(false); }
                catch { /* the session then just times out on the server */ }
            }
        }
        _outgoing.Writer.TryComplete();
        try { _closeCts.Cancel(); } catch (ObjectDisposedException) { }
        _connection?.Close(new ObjectDisposedException(nameof(ZooKeeperClient)));
        connection?.Close(new ObjectDisposedException(nameof(ZooKeeperClient)));
        FailQueued(p => new ConnectionLossException(p.Path, "The client was closed."));
        try { await _managerTask.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); }
        catch { /* never hang on close */ }
        _connection?.Close(new ObjectDisposedException(nameof(ZooKeeperClient)));
        FailQueued(p => new ConnectionLossException(p.Path, "The client was closed."));
        var expired = State == ConnectionState.Expired;
        SetState(ConnectionState.Closed);
        if (!expired) PostStateEvent(ConnectionState.Closed, clearWatches: true, defaultOnly: true);
        lock (_watchLock)
        {
            _dataWatches.Clear();
            _existWatches.Clear();
            _childWatches.Clear();
        }
        _events.Writer.TryComplete();
        _firstConnect.TrySetException(new ObjectDisposedException(nameof(ZooKeeperClient)));
        _ = _firstConnect.Task.Exception; // observed
    }
}
