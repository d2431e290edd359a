namespace Ensemble.Topology;

/// <summary>A node of the topology that could not be read as what its place says it is, and why.</summary>
public sealed record UnreadableRecord(string Path, string Reason);

/// <summary>A node holds data that is not the record its path calls for (another client wrote it, or it is damaged).</summary>
public sealed class UnreadableRecordException(string path, string reason)
    : Exception($"{path} cannot be read: {reason}")
{
    public string Path { get; } = path;
    public string Reason { get; } = reason;

    public UnreadableRecord Record => new(Path, Reason);
}
