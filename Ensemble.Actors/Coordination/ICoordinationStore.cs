namespace Ensemble.Coordination;

/// <summary>
/// A ZooKeeper-shaped coordination store: a tree of znodes with data and versions, ephemeral and
/// sequential nodes, one-shot watches and multi-op transactions. One instance is one session.
/// Topology code is written once against this; the embedded and the ZooKeeper backends implement it.
/// </summary>
public interface ICoordinationStore : IAsyncDisposable
{
    /// <summary>The session that owns this instance's ephemeral nodes.</summary>
    long SessionId { get; }

    /// <summary>Creates a node; returns its actual path (sequential nodes get a %010d suffix).</summary>
    Task<string> CreateAsync(string path, byte[] data, CreateMode mode = CreateMode.Persistent);

    /// <summary>Deletes a node; version -1 matches any version.</summary>
    Task DeleteAsync(string path, int version = -1);

    /// <summary>The node's stat, or null when it does not exist. A watcher is armed either way.</summary>
    Task<NodeStat?> ExistsAsync(string path, Action<WatchEvent>? watcher = null);

    Task<NodeData> GetDataAsync(string path, Action<WatchEvent>? watcher = null);

    /// <summary>Replaces a node's data; version -1 matches any version.</summary>
    Task<NodeStat> SetDataAsync(string path, byte[] data, int version = -1);

    /// <summary>Child names (relative, sorted ordinally) and the parent's stat.</summary>
    Task<NodeChildren> GetChildrenAsync(string path, Action<WatchEvent>? watcher = null);

    /// <summary>
    /// Applies every op or none. On failure throws the StoreException of the first failing op,
    /// with <see cref="StoreException.FailedOpIndex"/> set.
    /// </summary>
    Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<StoreOp> ops);

    /// <summary>Waits until this session sees every write committed before the call.</summary>
    Task SyncAsync(string path);
}

public enum CreateMode { Persistent, Ephemeral, PersistentSequential, EphemeralSequential }

/// <summary>ZooKeeper's Stat, minus the timestamps nobody here reads.</summary>
public sealed record NodeStat(
    long Czxid, long Mzxid, long Pzxid, int Version, int Cversion,
    long EphemeralOwner, int DataLength, int NumChildren);

public sealed record NodeData(byte[] Data, NodeStat Stat);

public sealed record NodeChildren(IReadOnlyList<string> Children, NodeStat Stat);

public enum WatchEventType { NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged }

public sealed record WatchEvent(WatchEventType Type, string Path);

/// <summary>One operation of a <see cref="ICoordinationStore.MultiAsync"/> transaction.</summary>
public abstract record StoreOp(string Path)
{
    public sealed record Create(string Path, byte[] Data, CreateMode Mode = CreateMode.Persistent) : StoreOp(Path);
    public sealed record Delete(string Path, int Version = -1) : StoreOp(Path);
    public sealed record SetData(string Path, byte[] Data, int Version = -1) : StoreOp(Path);
    public sealed record Check(string Path, int Version) : StoreOp(Path);
}

public abstract record OpResult
{
    public sealed record Created(string Path) : OpResult;
    public sealed record Deleted : OpResult;
    public sealed record DataSet(NodeStat Stat) : OpResult;
    public sealed record Checked : OpResult;
}
