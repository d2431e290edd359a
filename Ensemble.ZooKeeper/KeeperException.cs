namespace Ensemble.ZooKeeper;

public enum KeeperErrorCode
{
    Ok = 0, SystemError = -1, RuntimeInconsistency = -2, DataInconsistency = -3, ConnectionLoss = -4,
    MarshallingError = -5, Unimplemented = -6, OperationTimeout = -7, BadArguments = -8,
    ApiError = -100, NoNode = -101, NoAuth = -102, BadVersion = -103, NoChildrenForEphemerals = -108,
    NodeExists = -110, NotEmpty = -111, SessionExpired = -112, InvalidCallback = -113, InvalidAcl = -114,
    AuthFailed = -115, SessionMoved = -118, NotReadOnly = -119,
}

/// <summary>A ZooKeeper error reply (or a client-side ConnectionLoss / SessionExpired).</summary>
public class KeeperException : Exception
{
    public KeeperException(KeeperErrorCode code, string? path, string? message = null, Exception? inner = null)
        : base(message ?? Describe(code, path), inner)
    {
        Code = code;
        Path = path;
    }

    public KeeperErrorCode Code { get; }
    public string? Path { get; }

    /// <summary>Index of the failing operation when thrown by MultiAsync; -1 otherwise.</summary>
    public int FailedOpIndex { get; internal set; } = -1;

    public static KeeperException Create(KeeperErrorCode code, string? path = null) => code switch
    {
        KeeperErrorCode.NoNode => new NoNodeException(path),
        KeeperErrorCode.NodeExists => new NodeExistsException(path),
        KeeperErrorCode.BadVersion => new BadVersionException(path),
        KeeperErrorCode.NotEmpty => new NotEmptyException(path),
        KeeperErrorCode.NoAuth => new NoAuthException(path),
        KeeperErrorCode.SessionExpired => new SessionExpiredException(path),
        KeeperErrorCode.ConnectionLoss => new ConnectionLossException(path),
        KeeperErrorCode.NoChildrenForEphemerals => new NoChildrenForEphemeralsException(path),
        KeeperErrorCode.BadArguments => new BadArgumentsException(path),
        KeeperErrorCode.AuthFailed => new AuthFailedException(path),
        _ => new KeeperException(code, path),
    };

    internal static KeeperException Create(int code, string? path) => Create((KeeperErrorCode)code, path);

    private static string Describe(KeeperErrorCode code, string? path)
        => path is null ? $"KeeperErrorCode = {code}" : $"KeeperErrorCode = {code} for {path}";
}

public sealed class NoNodeException(string? path = null) : KeeperException(KeeperErrorCode.NoNode, path);
public sealed class NodeExistsException(string? path = null) : KeeperException(KeeperErrorCode.NodeExists, path);
public sealed class BadVersionException(string? path = null) : KeeperException(KeeperErrorCode.BadVersion, path);
public sealed class NotEmptyException(string? path = null) : KeeperException(KeeperErrorCode.NotEmpty, path);
public sealed class NoAuthException(string? path = null) : KeeperException(KeeperErrorCode.NoAuth, path);
public sealed class NoChildrenForEphemeralsException(string? path = null) : KeeperException(KeeperErrorCode.NoChildrenForEphemerals, path);
public sealed class BadArgumentsException(string? path = null) : KeeperException(KeeperErrorCode.BadArguments, path);
public sealed class AuthFailedException(string? path = null) : KeeperException(KeeperErrorCode.AuthFailed, path);

public sealed class SessionExpiredException : KeeperException
{
    public SessionExpiredException(string? path = null) : base(KeeperErrorCode.SessionExpired, path) { }
    public SessionExpiredException(string? path, string message) : base(KeeperErrorCode.SessionExpired, path, message) { }
}

public sealed class ConnectionLossException : KeeperException
{
    public ConnectionLossException(string? path = null) : base(KeeperErrorCode.ConnectionLoss, path) { }
    public ConnectionLossException(string? path, string message, Exception? inner = null) : base(KeeperErrorCode.ConnectionLoss, path, message, inner) { }
}
