namespace Ensemble.Coordination;

/// <summary>Tuning of <see cref="EmbeddedCoordinationServer"/>.</summary>
public sealed record EmbeddedStoreOptions
{
    public static EmbeddedStoreOptions Default { get; } = new();

    /// <summary>
    /// When true every committed transaction is fsync'ed to disk before the call returns (survives power
    /// loss). When false (default) it is written to the OS before the call returns (survives a process kill).
    /// </summary>
    public bool Fsync { get; init; }

    /// <summary>After this many records in the current log a snapshot is written in the background and a new log started.</summary>
    public int SnapshotThreshold { get; init; } = 10_000;

    /// <summary>Called (on the watch dispatch thread) when a watch callback throws; the store carries on either way.</summary>
    public Action<WatchEvent, Exception>? OnWatcherException { get; init; }
}
