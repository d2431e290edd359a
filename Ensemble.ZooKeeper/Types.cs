using System.Security.Cryptography;
using System.Text;

namespace Ensemble.ZooKeeper;

/// <summary>How to reach the ensemble and which session to use.</summary>
/// <param name="ConnectionString">Comma-separated "host:port" list, e.g. "127.0.0.1:2181,127.0.0.1:2182".</param>
/// <param name="SessionTimeout">Requested session timeout; the server clamps it to [2, 20] ticks.</param>
public sealed record ZooKeeperOptions(string ConnectionString, TimeSpan SessionTimeout)
{
    /// <summary>0 = new session; non-zero together with <see cref="SessionPassword"/> resumes a saved session.</summary>
    public long SessionId { get; init; }

    public byte[]? SessionPassword { get; init; }

    /// <summary>Deadline for <see cref="ZooKeeperClient.ConnectAsync"/> and for each round of reconnect attempts.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Authentication sent after every (re)connect.</summary>
    public IReadOnlyList<AuthInfo> Auth { get; init; } = [];
}

/// <summary>An authentication packet; digest: ("digest", UTF-8 "user:password").</summary>
public sealed record AuthInfo(string Scheme, byte[] Auth)
{
    public static AuthInfo Digest(string user, string password) => new("digest", Encoding.UTF8.GetBytes(user + ":" + password));
}

public enum ConnectionState { Connecting, SyncConnected, Disconnected, Expired, Closed }

public enum WatchEventKind { None = -1, NodeCreated = 1, NodeDeleted = 2, NodeDataChanged = 3, NodeChildrenChanged = 4 }

/// <summary>A watch notification or a connection state change (Kind None, Path null).</summary>
public sealed record WatchedEvent(WatchEventKind Kind, ConnectionState State, string? Path);

public enum CreateMode { Persistent = 0, Ephemeral = 1, PersistentSequential = 2, EphemeralSequential = 3 }

public sealed record Stat(long Czxid, long Mzxid, long Ctime, long Mtime, int Version, int Cversion, int Aversion,
    long EphemeralOwner, int DataLength, int NumChildren, long Pzxid);

public sealed record Id(string Scheme, string Identity);

public sealed record Acl(int Perms, Id Id)
{
    /// <summary>Everyone may do everything: [(All, world:anyone)].</summary>
    public static IReadOnlyList<Acl> OpenUnsafe { get; } = [new Acl(ZooKeeper.Perms.All, new Id("world", "anyone"))];

    /// <summary>Only the authenticated creator may do anything: [(All, auth:)]. Needs a prior AddAuth.</summary>
    public static IReadOnlyList<Acl> CreatorAll { get; } = [new Acl(ZooKeeper.Perms.All, new Id("auth", ""))];

    /// <summary>Readable by everyone: [(Read, world:anyone)].</summary>
    public static IReadOnlyList<Acl> ReadUnsafe { get; } = [new Acl(ZooKeeper.Perms.Read, new Id("world", "anyone"))];

    /// <summary>The digest id of a user: "user:base64(sha1(user:password))".</summary>
    public static Id Digest(string user, string password)
    {
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes(user + ":" + password));
        return new Id("digest", user + ":" + Convert.ToBase64String(hash));
    }
}

public static class Perms
{
    public const int Read = 1;
    public const int Write = 2;
    public const int Create = 4;
    public const int Delete = 8;
    public const int Admin = 16;
    public const int All = 31;
}

/// <summary>One operation of a <see cref="ZooKeeperClient.MultiAsync"/> transaction.</summary>
public abstract record Op(string Path)
{
    public sealed record Create(string Path, byte[] Data, IReadOnlyList<Acl> Acl, CreateMode Mode) : Op(Path);
    public sealed record Delete(string Path, int Version = -1) : Op(Path);
    public sealed record SetData(string Path, byte[] Data, int Version = -1) : Op(Path);
    public sealed record Check(string Path, int Version) : Op(Path);
}

/// <summary>The result of one operation of a successful transaction.</summary>
public abstract record OpResult
{
    public sealed record Created(string Path) : OpResult;
    public sealed record Deleted : OpResult;
    public sealed record DataSet(Stat Stat) : OpResult;
    public sealed record Checked : OpResult;
}
