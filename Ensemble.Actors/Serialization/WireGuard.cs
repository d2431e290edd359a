using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Remote.Serialization;
using Akka.Serialization;

namespace Ensemble.Serialization;

/// <summary>
/// Stands in for Akka's serializers that would build objects from what a peer names: the Newtonsoft JSON
/// fallback (.NET type names in the payload) and remote deployment (Props, and with them types, sent by
/// a peer). Nothing is written or read through it: a message without a serializer of ours, Akka's protobuf
/// ones or the guarded <see cref="GuardedMiscSerializer"/> fails loudly on the sender's side and is dropped
/// on the receiver's.
/// </summary>
public sealed class RefusingSerializer(ExtendedActorSystem system) : Serializer(system)
{
    /// <summary>Akka passes the settings of the serializer it replaces (serialization-settings.json); there are none to use.</summary>
    public RefusingSerializer(ExtendedActorSystem system, Akka.Configuration.Config _) : this(system) { }

    public override bool IncludeManifest => true;

    public override byte[] ToBinary(object obj) =>
        throw new SerializationException($"{obj.GetType().Name} has no serializer of its own; wire messages must be IWireMessage records (EnsembleSerializer)");

    public override object FromBinary(byte[] bytes, Type? type) =>
        throw new SerializationException("refused a message a peer serialized by type name (JSON or remote deployment); only our own manifests are read from the wire");
}

/// <summary>
/// Akka.Remote's miscellaneous serializer (same identifier, 16), limited to what a cluster needs between
/// its own nodes — Identify, ActorIdentity, actor references, PoisonPill, Kill and the remote watcher's
/// heartbeats. Failures (which carry an exception type name), configurations, scopes and router pools (for
/// remote deployment) are refused when they arrive. Our own failures travel as <see cref="WireFailure"/>.
/// </summary>
public sealed class GuardedMiscSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private static readonly HashSet<string> Accepted = ["ID", "AID", "AR", "PP", "K", "RWHB", "RWHR"];

    /// <summary>Akka.Remote's identifier for its miscellaneous messages, which peers put on the wire.</summary>
    public const int MiscIdentifier = 16;

    private readonly Lazy<MiscMessageSerializer> _inner = new(() => new MiscMessageSerializer(system));

    public override int Identifier => MiscIdentifier;

    public override string Manifest(object o) => _inner.Value.Manifest(o);

    public override byte[] ToBinary(object obj) => _inner.Value.ToBinary(obj);

    public override object FromBinary(byte[] bytes, string manifest) =>
        Accepted.Contains(manifest)
            ? _inner.Value.FromBinary(bytes, manifest)
            : throw new SerializationException($"refused a remote '{manifest}' message: only identification, actor references, PoisonPill, Kill and heartbeats are read from Akka's miscellaneous messages");
}

/// <summary>What a peer learns of a failure it asked for: a sentence, never an exception type.</summary>
public sealed class WireFailure(string message) : Exception(message);

/// <summary>Remote deployment refused: a peer's Props would name the types to create here.</summary>
public sealed class RefusingDeploymentSerializer(ExtendedActorSystem system) : Serializer(system)
{
    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj) =>
        throw new SerializationException("remote deployment is not used by ActorEnsemble");

    public override object FromBinary(byte[] bytes, Type? type) =>
        throw new SerializationException("refused a remote deployment from a peer; ActorEnsemble nodes create their own actors");
}
