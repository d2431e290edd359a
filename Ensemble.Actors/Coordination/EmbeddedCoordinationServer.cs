namespace Ensemble.Coordination;

/// <summary>
/// The in-process, single-machine stand-in for a ZooKeeper server: a znode tree with ZooKeeper's semantics
/// (versions, zxids, sequential and ephemeral nodes, one-shot watches, atomic multi), made durable by an
/// append-only transaction log plus periodic snapshots in its data directory (see <see cref="DurableStorage"/>
/// for the file format). <see cref="Connect"/> opens sessions; every session is an <see cref="ICoordinationStore"/>.
/// Thread-safe: one lock guards the tree; the only I/O under it is the log append of a committing write.
/// </summary>
public sealed class EmbeddedCoordinationServer : IDisposable
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, Node> nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<long, EmbeddedSession> sessions = new();
    private readonly Dictionary<string, List<WatchRegistration>> dataWatches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<WatchRegistration>> childWatches = new(StringComparer.Ordinal);
    private readonly DurableStorage storage;
    private readonly EmbeddedStoreOptions options;
    private long lastZxid;
    private long writeCount;
    private long nextSessionId;
    private bool disposed;

    private EmbeddedCoordinationServer(DurableStorage storage, EmbeddedStoreOptions options)
    {
        this.storage = storage;
        this.options = options;
        // Time-based so ids of sessions from an earlier run of the same directory are not reused.
        nextSessionId = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 12;
    }

    /// <summary>Opens (creating if needed) a data directory with default options.</summary>
    public static EmbeddedCoordinationServer Open(string dataDirectory) => Open(dataDirectory, EmbeddedStoreOptions.Default);

    /// <summary>
    /// Opens (creating if needed) a data directory: takes its lock (IOException if another server holds it),
    /// loads the newest snapshot, replays the log (a torn tail is cut off) and expires the ephemeral nodes
    /// of the sessions that died with the previous process.
    /// </summary>
    public static EmbeddedCoordinationServer Open(string dataDirectory, EmbeddedStoreOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        ArgumentNullException.ThrowIfNull(options);
        var storage = DurableStorage.Acquire(dataDirectory, options);
        try
        {
            var server = new EmbeddedCoordinationServer(storage, options);
            server.Recover();
            return server;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>Full path of the data directory.</summary>
    public string DataDirectory => storage.Directory;

    /// <summary>Committed client write operations: each create, delete and setData is one, a multi is one.
    /// The deletion of a closed session's ephemeral nodes is not counted.</summary>
    public long WriteCount => Interlocked.Read(ref writeCount);

    /// <summary>The zxid of the last committed transaction.</summary>
    public long LastZxid { get { lock (gate) return lastZxid; } }

    /// <summary>Armed watch registrations across all sessions (diagnostics).</summary>
    public int ActiveWatchCount
    {
        get
        {
            lock (gate)
                return dataWatches.Values.Sum(l => l.Count) + childWatches.Values.Sum(l => l.Count);
        }
    }

    /// <summary>Number of open sessions.</summary>
    public int SessionCount { get { lock (gate) return sessions.Count; } }

    /// <summary>Opens a new session with a unique positive id.</summary>
    public ICoordinationStore Connect()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            var session = new EmbeddedSession(this, ++nextSessionId);
            sessions.Add(session.SessionId, session);
            return session;
        }
    }

    /// <summary>Closes every session (deleting their ephemeral nodes), waits for a running snapshot and releases the directory.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            foreach (var session in sessions.Values.ToList())
            {
                try { CloseSessionLocked(session); }
                catch (IOException) { } // the node deletions are lost; they are expired again on the next Open
            }
        }
        storage.Dispose();
    }

    // ================================================================= recovery

    private void Recover()
    {
        var snapshot = storage.LoadNewestSnapshot();
        if (snapshot is not null)
        {
            foreach (var n in snapshot.Nodes)
            {
                nodes[n.Path] = new Node(n.Data)
                {
                    Czxid = n.Czxid, Mzxid = n.Mzxid, Pzxid = n.Pzxid, Version = n.Version, Cversion = n.Cversion,
                    EphemeralOwner = n.EphemeralOwner,
                };
            }
            foreach (var path in nodes.Keys.ToList())
            {
                if (path == "/") continue;
                if (!nodes.TryGetValue(ZnodePaths.Parent(path), out var parent))
                    throw new InvalidDataException($"Snapshot in '{storage.Directory}' holds '{path}' without its parent.");
                parent.AddChild(ZnodePaths.Name(path));
            }
            lastZxid = snapshot.Zxid;
        }
        if (!nodes.ContainsKey("/"))
            nodes["/"] = new Node([]);

        lastZxid = storage.ReplayAndOpenLog(lastZxid, ReplayTxn);

        // Sessions do not survive the process: expire their ephemeral nodes as one logged transaction,
        // exactly as ZooKeeper expires a dead session (parents' cversion/pzxid move accordingly).
        var orphans = nodes.Where(kv => kv.Value.EphemeralOwner != 0).Select(kv => kv.Key).ToList();
        if (orphans.Count > 0)
        {
            var txn = new Txn(lastZxid + 1);
            foreach (var path in orphans)
                RemoveNode(txn, path, nodes[path]);
            Commit(txn);
        }
    }

    private void ReplayTxn(LoggedTxn logged)
    {
        var txn = new Txn(logged.Zxid);
        foreach (var op in logged.Ops)
        {
            nodes.TryGetValue(op.Path, out var node);
            switch (op.Kind)
            {
                case LoggedOpKind.Create:
                    if (node is not null || op.Path == "/" || !nodes.TryGetValue(ZnodePaths.Parent(op.Path), out var parent))
                        throw Inconsistent(logged, op);
                    InsertNode(txn, op.Path, parent, op.Data!, op.EphemeralOwner, null);
                    break;
                case LoggedOpKind.Delete:
                    if (node is null || op.Path == "/") throw Inconsistent(logged, op);
                    RemoveNode(txn, op.Path, node);
                    break;
                case LoggedOpKind.SetData:
                    if (node is null) throw Inconsistent(logged, op);
                    ReplaceData(txn, op.Path, node, op.Data!);
                    break;
            }
        }
        lastZxid = logged.Zxid;
    }

    private InvalidDataException Inconsistent(LoggedTxn txn, LoggedOp op) =>
        new($"Coordination log in '{storage.Directory}' does not apply: zxid {txn.Zxid} {op.Kind} {op.Path}.");

    // ================================================================= reads

    internal NodeStat? Exists(EmbeddedSession session, string path, Action<WatchEvent>? watcher)
    {
        ZnodePaths.Validate(path);
        lock (gate)
        {
            EnsureAlive(session, path);
            nodes.TryGetValue(path, out var node);
            if (watcher is not null) AddWatch(dataWatches, path, new WatchRegistration(session, watcher), isChild: false);
            return node?.ToStat();
        }
    }

    internal NodeData GetData(EmbeddedSession session, string path, Action<WatchEvent>? watcher)
    {
        ZnodePaths.Validate(path);
        byte[] data;
        NodeStat stat;
        lock (gate)
        {
            EnsureAlive(session, path);
            if (!nodes.TryGetValue(path, out var node)) throw StoreException.For(StoreErrorCode.NoNode, path);
            if (watcher is not null) AddWatch(dataWatches, path, new WatchRegistration(session, watcher), isChild: false);
            data = node.Data; // never mutated in place, so it can be copied outside the lock
            stat = node.ToStat();
        }
        return new NodeData(data.Length == 0 ? [] : (byte[])data.Clone(), stat);
    }

    internal NodeChildren GetChildren(EmbeddedSession session, string path, Action<WatchEvent>? watcher)
    {
        ZnodePaths.Validate(path);
        lock (gate)
        {
            EnsureAlive(session, path);
            if (!nodes.TryGetValue(path, out var node)) throw StoreException.For(StoreErrorCode.NoNode, path);
            if (watcher is not null) AddWatch(childWatches, path, new WatchRegistration(session, watcher), isChild: true);
            string[] children = node.Children is null ? [] : [.. node.Children];
            return new NodeChildren(children, node.ToStat());
        }
    }

    internal void Sync(EmbeddedSession session, string path)
    {
        ZnodePaths.Validate(path);
        lock (gate) EnsureAlive(session, path);
    }

    // ================================================================= writes

    internal string Create(EmbeddedSession session, string path, byte[]? data, CreateMode mode)
    {
        var copy = CopyData(data);
        lock (gate)
        {
            EnsureAlive(session, path);
            var txn = new Txn(lastZxid + 1);
            string actual;
            try { actual = ApplyCreate(txn, session, path, copy, mode); }
            catch { Rollback(txn); throw; }
            Commit(txn);
            writeCount++;
            return actual;
        }
    }

    internal void Delete(EmbeddedSession session, string path, int version)
    {
        lock (gate)
        {
            EnsureAlive(session, path);
            var txn = new Txn(lastZxid + 1);
            try { ApplyDelete(txn, path, version); }
            catch { Rollback(txn); throw; }
            Commit(txn);
            writeCount++;
        }
    }

    internal NodeStat SetData(EmbeddedSession session, string path, byte[]? data, int version)
    {
        var copy = CopyData(data);
        lock (gate)
        {
            EnsureAlive(session, path);
            var txn = new Txn(lastZxid + 1);
            NodeStat stat;
            try { stat = ApplySetData(txn, path, copy, version); }
            catch { Rollback(txn); throw; }
            Commit(txn);
            writeCount++;
            return stat;
        }
    }

    internal IReadOnlyList<OpResult> Multi(EmbeddedSession session, IReadOnlyList<StoreOp> ops)
    {
        if (ops is null) throw new StoreException(StoreErrorCode.BadArguments, "/", "multi needs a list of ops");
        // Copy payloads before taking the lock.
        var prepared = new StoreOp[ops.Count];
        for (int i = 0; i < ops.Count; i++)
        {
            prepared[i] = ops[i] switch
            {
                StoreOp.Create c => c with { Data = CopyData(c.Data) },
                StoreOp.SetData s => s with { Data = CopyData(s.Data) },
                var other => other,
            };
        }
        lock (gate)
        {
            EnsureAlive(session, prepared.Length > 0 ? prepared[0]?.Path : null);
            var txn = new Txn(lastZxid + 1);
            var results = new OpResult[prepared.Length];
            for (int i = 0; i < prepared.Length; i++)
            {
                try
                {
                    results[i] = prepared[i] switch
                    {
                        StoreOp.Create c => new OpResult.Created(ApplyCreate(txn, session, c.Path, c.Data, c.Mode)),
                        StoreOp.Delete d => ApplyDelete(txn, d.Path, d.Version),
                        StoreOp.SetData s => new OpResult.DataSet(ApplySetData(txn, s.Path, s.Data, s.Version)),
                        StoreOp.Check k => ApplyCheck(k.Path, k.Version),
                        var other => throw new StoreException(StoreErrorCode.BadArguments, other?.Path ?? "/",
                            $"unsupported multi op {other?.GetType().Name ?? "null"}"),
                    };
                }
                catch (StoreException e)
                {
                    Rollback(txn);
                    throw StoreException.For(e.Code, e.Path, i);
                }
                catch
                {
                    Rollback(txn);
                    throw;
                }
            }
            Commit(txn);
            writeCount++;
            return results;
        }
    }

    internal void CloseSession(EmbeddedSession session)
    {
        lock (gate) CloseSessionLocked(session);
    }

    private void CloseSessionLocked(EmbeddedSession session)
    {
        if (session.Closed) return;
        session.Closed = true;
        sessions.Remove(session.SessionId);
        foreach (var (path, isChild) in session.WatchKeys)
        {
            var table = isChild ? childWatches : dataWatches;
            if (table.TryGetValue(path, out var list))
            {
                list.RemoveAll(r => ReferenceEquals(r.Session, session));
                if (list.Count == 0) table.Remove(path);
            }
        }
        session.WatchKeys.Clear();
        session.CompleteDispatch();
        if (session.Ephemerals.Count > 0)
        {
            var txn = new Txn(lastZxid + 1);
            try
            {
                foreach (var path in session.Ephemerals.Order(StringComparer.Ordinal).ToList())
                    RemoveNode(txn, path, nodes[path]);
            }
            catch { Rollback(txn); throw; }
            Commit(txn);
        }
    }

    private static byte[] CopyData(byte[]? data) => data is null || data.Length == 0 ? [] : (byte[])data.Clone();

    private void EnsureAlive(EmbeddedSession session, string? path)
    {
        if (session.Closed)
            throw new StoreException(StoreErrorCode.SessionExpired, path ?? "/", $"session 0x{session.SessionId:x} is closed");
    }

    // ================================================================= transaction engine (under the lock)

    /// <summary>The mutations of one write transaction: their log form, how to undo them, the watch events they cause.</summary>
    private sealed class Txn(long zxid)
    {
        public long Zxid { get; } = zxid;
        public List<LoggedOp> Log { get; } = [];
        public List<Action> Undo { get; } = [];
        public List<WatchEvent> Events { get; } = [];
    }

    private string ApplyCreate(Txn txn, EmbeddedSession session, string path, byte[]? data, CreateMode mode)
    {
        bool sequential = mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential;
        bool ephemeral = mode is CreateMode.Ephemeral or CreateMode.EphemeralSequential;
        if (!Enum.IsDefined(mode)) throw new StoreException(StoreErrorCode.BadArguments, path ?? "/", $"unknown create mode {mode}");
        ZnodePaths.Validate(path, sequential);
        if (path == "/") throw StoreException.For(StoreErrorCode.NodeExists, path);
        string parentPath = ZnodePaths.Parent(sequential ? path + "0" : path);
        if (!nodes.TryGetValue(parentPath, out var parent)) throw StoreException.For(StoreErrorCode.NoNode, path);
        string actual = sequential ? path + parent.Cversion.ToString("D10", System.Globalization.CultureInfo.InvariantCulture) : path;
        if (nodes.ContainsKey(actual)) throw StoreException.For(StoreErrorCode.NodeExists, actual);
        if (parent.EphemeralOwner != 0) throw StoreException.For(StoreErrorCode.NoChildrenForEphemerals, actual);
        InsertNode(txn, actual, parent, data ?? [], ephemeral ? session.SessionId : 0, ephemeral ? session : null);
        return actual;
    }

    private OpResult ApplyDelete(Txn txn, string path, int version)
    {
        ZnodePaths.Validate(path);
        if (path == "/") throw new StoreException(StoreErrorCode.BadArguments, path, "the root cannot be deleted");
        if (!nodes.TryGetValue(path, out var node)) throw StoreException.For(StoreErrorCode.NoNode, path);
        if (version != -1 && version != node.Version) throw StoreException.For(StoreErrorCode.BadVersion, path);
        if (node.ChildCount > 0) throw StoreException.For(StoreErrorCode.NotEmpty, path);
        RemoveNode(txn, path, node);
        return new OpResult.Deleted();
    }

    private NodeStat ApplySetData(Txn txn, string path, byte[]? data, int version)
    {
        ZnodePaths.Validate(path);
        if (!nodes.TryGetValue(path, out var node)) throw StoreException.For(StoreErrorCode.NoNode, path);
        if (version != -1 && version != node.Version) throw StoreException.For(StoreErrorCode.BadVersion, path);
        ReplaceData(txn, path, node, data ?? []);
        return node.ToStat();
    }

    private OpResult ApplyCheck(string path, int version)
    {
        ZnodePaths.Validate(path);
        if (!nodes.TryGetValue(path, out var node)) throw StoreException.For(StoreErrorCode.NoNode, path);
        if (version != -1 && version != node.Version) throw StoreException.For(StoreErrorCode.BadVersion, path);
        return new OpResult.Checked();
    }

    private void InsertNode(Txn txn, string path, Node parent, byte[] data, long owner, EmbeddedSession? ownerSession)
    {
        long zxid = txn.Zxid;
        var node = new Node(data) { Czxid = zxid, Mzxid = zxid, Pzxid = zxid, EphemeralOwner = owner };
        string name = ZnodePaths.Name(path);
        int oldCversion = parent.Cversion;
        long oldPzxid = parent.Pzxid;
        nodes.Add(path, node);
        parent.AddChild(name);
        parent.Cversion++;
        parent.Pzxid = zxid;
        if (owner != 0 && (ownerSession ?? FindSession(owner)) is { } s) s.Ephemerals.Add(path);
        txn.Undo.Add(() =>
        {
            nodes.Remove(path);
            parent.Children!.Remove(name);
            parent.Cversion = oldCversion;
            parent.Pzxid = oldPzxid;
            if (owner != 0 && (ownerSession ?? FindSession(owner)) is { } s2) s2.Ephemerals.Remove(path);
        });
        txn.Log.Add(new LoggedOp(LoggedOpKind.Create, path, data, owner));
        txn.Events.Add(new WatchEvent(WatchEventType.NodeCreated, path));
        txn.Events.Add(new WatchEvent(WatchEventType.NodeChildrenChanged, ZnodePaths.Parent(path)));
    }

    private void RemoveNode(Txn txn, string path, Node node)
    {
        var parent = nodes[ZnodePaths.Parent(path)];
        string name = ZnodePaths.Name(path);
        int oldCversion = parent.Cversion;
        long oldPzxid = parent.Pzxid;
        nodes.Remove(path);
        parent.Children!.Remove(name);
        parent.Cversion++;
        parent.Pzxid = txn.Zxid;
        var owner = node.EphemeralOwner != 0 ? FindSession(node.EphemeralOwner) : null;
        owner?.Ephemerals.Remove(path);
        txn.Undo.Add(() =>
        {
            nodes.Add(path, node);
            parent.AddChild(name);
            parent.Cversion = oldCversion;
            parent.Pzxid = oldPzxid;
            owner?.Ephemerals.Add(path);
        });
        txn.Log.Add(new LoggedOp(LoggedOpKind.Delete, path, null, 0));
        txn.Events.Add(new WatchEvent(WatchEventType.NodeDeleted, path));
        txn.Events.Add(new WatchEvent(WatchEventType.NodeChildrenChanged, ZnodePaths.Parent(path)));
    }

    private void ReplaceData(Txn txn, string path, Node node, byte[] data)
    {
        var (oldData, oldVersion, oldMzxid) = (node.Data, node.Version, node.Mzxid);
        node.Data = data;
        node.Version++;
        node.Mzxid = txn.Zxid;
        txn.Undo.Add(() => (node.Data, node.Version, node.Mzxid) = (oldData, oldVersion, oldMzxid));
        txn.Log.Add(new LoggedOp(LoggedOpKind.SetData, path, data, 0));
        txn.Events.Add(new WatchEvent(WatchEventType.NodeDataChanged, path));
    }

    private EmbeddedSession? FindSession(long id) => sessions.GetValueOrDefault(id);

    private static void Rollback(Txn txn)
    {
        for (int i = txn.Undo.Count - 1; i >= 0; i--)
            txn.Undo[i]();
    }

    /// <summary>Makes the transaction durable (log append), then queues its watch events. Rolls back if the append fails.</summary>
    private void Commit(Txn txn)
    {
        if (txn.Log.Count > 0)
        {
            try
            {
                storage.Append(txn.Zxid, txn.Log);
            }
            catch
            {
                Rollback(txn);
                throw;
            }
            lastZxid = txn.Zxid;
            if (storage.SnapshotDue)
            {
                try { storage.BeginSnapshot(lastZxid, CaptureSnapshot()); }
                catch (IOException) { } // keep appending to the current log; retried on the next commit
            }
        }
        foreach (var e in txn.Events)
            FireWatches(e);
    }

    private List<SnapshotNode> CaptureSnapshot()
    {
        var list = new List<SnapshotNode>(nodes.Count);
        foreach (var (path, n) in nodes)
            list.Add(new SnapshotNode(path, n.Data, n.Czxid, n.Mzxid, n.Pzxid, n.Version, n.Cversion, n.EphemeralOwner));
        return list;
    }

    // ================================================================= watches (under the lock)

    private static void AddWatch(Dictionary<string, List<WatchRegistration>> table, string path, WatchRegistration registration, bool isChild)
    {
        if (!table.TryGetValue(path, out var list))
            table[path] = list = [];
        if (!list.Contains(registration))
            list.Add(registration);
        registration.Session.WatchKeys.Add((path, isChild));
    }

    private List<WatchRegistration>? Take(Dictionary<string, List<WatchRegistration>> table, string path, bool isChild)
    {
        if (!table.Remove(path, out var list)) return null;
        foreach (var r in list) r.Session.WatchKeys.Remove((path, isChild));
        return list;
    }

    private void FireWatches(WatchEvent e)
    {
        List<WatchRegistration>? targets = e.Type switch
        {
            WatchEventType.NodeCreated or WatchEventType.NodeDataChanged => Take(dataWatches, e.Path, false),
            WatchEventType.NodeChildrenChanged => Take(childWatches, e.Path, true),
            _ => Union(Take(dataWatches, e.Path, false), Take(childWatches, e.Path, true)),
        };
        if (targets is null) return;
        foreach (var r in targets)
            r.Session.Enqueue(r.Callback, e);
    }

    private static List<WatchRegistration>? Union(List<WatchRegistration>? a, List<WatchRegistration>? b)
    {
        if (a is null) return b;
        if (b is null) return a;
        foreach (var r in b)
            if (!a.Contains(r)) a.Add(r);
        return a;
    }

    internal void ReportWatcherException(WatchEvent e, Exception exception)
    {
        try { options.OnWatcherException?.Invoke(e, exception); }
        catch { /* a faulty handler must not stop dispatch either */ }
    }

    // ================================================================= node

    private sealed class Node(byte[] data)
    {
        public byte[] Data = data;
        public long Czxid, Mzxid, Pzxid, EphemeralOwner;
        public int Version, Cversion;
        public SortedSet<string>? Children;

        public int ChildCount => Children?.Count ?? 0;

        public void AddChild(string name) => (Children ??= new SortedSet<string>(StringComparer.Ordinal)).Add(name);

        public NodeStat ToStat() => new(Czxid, Mzxid, Pzxid, Version, Cversion, EphemeralOwner, Data.Length, ChildCount);
    }
}

/// <summary>A watch armed by a session; equal registrations (same session, same delegate) fire once.</summary>
internal sealed record WatchRegistration(EmbeddedSession Session, Action<WatchEvent> Callback);
