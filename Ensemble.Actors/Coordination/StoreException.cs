namespace Ensemble.Coordination;

/// <summary>Error codes of the coordination store; the numbers are ZooKeeper's.</summary>
public enum StoreErrorCode
{
    ConnectionLoss = -4,
    OperationTimeout = -7,
    BadArguments = -8,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
}

/// <summary>A store operation failed; subclasses name the common codes so callers can catch them.</summary>
public class StoreException : Exception
{
    public StoreException(StoreErrorCode code, string path, string? message = null)
        : base(message ?? $"{code} at {path}")
    {
        Code = code;
        Path = path;
    }

    public StoreErrorCode Code { get; }
    public string Path { get; }

    /// <summary>Within a multi, the index of the op that failed; -1 otherwise.</summary>
    public int FailedOpIndex { get; init; } = -1;

    public static StoreException For(StoreErrorCode code, string path, int failedOpIndex = -1) => code switch
    {
        StoreErrorCode.NoNode => new NoNodeException(path) { FailedOpIndex = failedOpIndex },
        StoreErrorCode.NodeExists => new NodeExistsException(path) { FailedOpIndex = failedOpIndex },
        StoreErrorCode.BadVersion => new BadVersionException(path) { FailedOpIndex = failedOpIndex },
        StoreErrorCode.NotEmpty => new NotEmptyException(path) { FailedOpIndex = failedOpIndex },
        _ => new StoreException(code, path) { FailedOpIndex = failedOpIndex },
    };
}

public sealed class NoNodeException(string path) : StoreException(StoreErrorCode.NoNode, path, $"no node at {path}");
public sealed class NodeExistsException(string path) : StoreException(StoreErrorCode.NodeExists, path, $"node already exists at {path}");
public sealed class BadVersionException(string path) : StoreException(StoreErrorCode.BadVersion, path, $"version mismatch at {path}");
public sealed class NotEmptyException(string path) : StoreException(StoreErrorCode.NotEmpty, path, $"node has children at {path}");
