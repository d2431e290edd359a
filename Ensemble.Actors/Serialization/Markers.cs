namespace Ensemble.Serialization;

/// <summary>Marks an event that a persistent actor journals; bound to <see cref="EnsembleSerializer"/>.</summary>
public interface IPersistedEvent;

/// <summary>Marks a message that may cross the network (CLI ⇄ controller ⇄ agents); bound to <see cref="EnsembleSerializer"/>.</summary>
public interface IWireMessage;

/// <summary>
/// A wire message that carries raw bytes (a chunk of a formula bundle): serialized as a JSON header followed by the
/// bytes as they are, so a chunk is not inflated by base64 nor copied into a string.
/// </summary>
public interface IChunkMessage : IWireMessage
{
    byte[] Data { get; }

    /// <summary>The same message carrying <paramref name="data"/>.</summary>
    IChunkMessage WithData(byte[] data);
}
