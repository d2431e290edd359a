using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;
using Ensemble.Services;

namespace Ensemble.Serialization;

/// <summary>
/// Serializes our own messages and journaled events as JSON under short, fixed manifests. The manifest
/// picks the type from a closed table: no type name read from a journal or the wire is ever resolved.
/// </summary>
public sealed class EnsembleSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly IReadOnlyDictionary<string, Type> TypesByManifest = new Dictionary<string, Type>
    {
        ["svc.deployed"] = typeof(ServiceEvents.ServiceCreated),
        ["svc.unit-placed"] = typeof(ServiceEvents.UnitPlaced),
        ["svc.unit-destroyed"] = typeof(ServiceEvents.UnitDeleted),
        ["svc.upgrade-began"] = typeof(ServiceEvents.UpgradeBegan),
        ["svc.unit-upgrade-launched"] = typeof(ServiceEvents.UnitUpgradeLaunched),
        ["svc.unit-upgrade-succeeded"] = typeof(ServiceEvents.UnitUpgradeSucceeded),
        ["svc.unit-upgrade-failed"] = typeof(ServiceEvents.UnitUpgradeFailed),
        ["svc.upgrade-ended"] = typeof(ServiceEvents.UpgradeEnded),
        ["svc.removed"] = typeof(ServiceEvents.ServiceRemoved),
        // Snapshots go through the same table: a snapshot store holds no type names either.
        ["svc.snapshot"] = typeof(ServiceSnapshot),
    }.Concat(WireMessages()).ToDictionary();

    /// <summary>
    /// Wire messages: the nested records of our protocol classes, each under "wire.&lt;Protocol&gt;.&lt;Name&gt;".
    /// The table is built from our own types at start; the wire only ever chooses among them.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, Type>> WireMessages() =>
        new[]
            {
                typeof(ServiceRequests), typeof(ServiceReplies), typeof(EnvironmentRequests), typeof(EnvironmentReplies), typeof(Units.UnitRequests), typeof(Units.UnitReplies),
                typeof(Machines.MachineRequests), typeof(Machines.MachineReplies), typeof(Formulas.Transfer.BundleRequests), typeof(Formulas.Transfer.BundleReplies),
                typeof(Health.HealthRequests), typeof(Health.HealthReplies), typeof(Relations.RelationRequests), typeof(Relations.RelationReplies),
            }
            .SelectMany(protocol => protocol.GetNestedTypes()
                .Where(t => t.IsClass && !t.IsAbstract && typeof(IWireMessage).IsAssignableFrom(t))
                .Select(t => KeyValuePair.Create($"wire.{protocol.Name}.{t.Name}", t)));

    private static readonly IReadOnlyDictionary<Type, string> ManifestsByType =
        TypesByManifest.ToDictionary(kv => kv.Value, kv => kv.Key);

    public const int SerializerId = 4711;

    public override int Identifier => SerializerId;

    private const string FailureManifest = "wire.failure";
    private const string SuccessManifest = "wire.success";

    /// <summary>A failure or success as it crosses the wire: a sentence, never an exception or object type.</summary>
    private sealed record StatusOnWire(string? Message);

    public override string Manifest(object o) => o switch
    {
        Status.Failure => FailureManifest,
        Status.Success => SuccessManifest,
        _ => ManifestsByType.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType()} has no manifest in {nameof(EnsembleSerializer)}; add it to the table"),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        Status.Failure failure => JsonSerializer.SerializeToUtf8Bytes(new StatusOnWire(failure.Cause?.GetBaseException().Message), Json),
        Status.Success success => JsonSerializer.SerializeToUtf8Bytes(new StatusOnWire(success.Status?.ToString()), Json),
        IChunkMessage chunk => ChunkToBinary(chunk),
        _ => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Json),
    };

    /// <summary>A chunk message: the header's length (4 bytes, little-endian), the header as JSON without the data, then the data.</summary>
    private static byte[] ChunkToBinary(IChunkMessage chunk)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(chunk.WithData([]), chunk.GetType(), Json);
        var bytes = new byte[4 + header.Length + chunk.Data.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes, header.Length);
        header.CopyTo(bytes, 4);
        chunk.Data.CopyTo(bytes, 4 + header.Length);
        return bytes;
    }

    private static IChunkMessage ChunkFromBinary(byte[] bytes, Type type, string manifest)
    {
        var headerLength = bytes.Length >= 4 ? System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes) : -1;
        if (headerLength < 0 || headerLength > bytes.Length - 4)
            throw new SerializationException($"malformed chunk payload for manifest '{manifest}'");
        var header = JsonSerializer.Deserialize(bytes.AsSpan(4, headerLength), type, Json) as IChunkMessage
            ?? throw new SerializationException($"empty payload for manifest '{manifest}'");
        return header.WithData(bytes[(4 + headerLength)..]);
    }

    public override object FromBinary(byte[] bytes, string manifest) => manifest switch
    {
        FailureManifest => new Status.Failure(new WireFailure(Read<StatusOnWire>(bytes, manifest).Message ?? "failed")),
        SuccessManifest => new Status.Success(Read<StatusOnWire>(bytes, manifest).Message),
        _ => TypesByManifest.TryGetValue(manifest, out var type)
            ? typeof(IChunkMessage).IsAssignableFrom(type)
                ? ChunkFromBinary(bytes, type, manifest)
                : JsonSerializer.Deserialize(bytes, type, Json) ?? throw new SerializationException($"empty payload for manifest '{manifest}'")
            : throw new SerializationException($"unknown manifest '{manifest}'"),
    };

    private static T Read<T>(byte[] bytes, string manifest) =>
        JsonSerializer.Deserialize<T>(bytes, Json) ?? throw new SerializationException($"empty payload for manifest '{manifest}'");
}
