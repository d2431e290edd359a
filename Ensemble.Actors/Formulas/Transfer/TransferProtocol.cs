using Ensemble.Serialization;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Formulas.Transfer;

/// <summary>
/// What crosses the network about bundles: the operator's uploads to the controller's formula storage, and the
/// agents' downloads from it. A bundle never travels as one message: it goes in chunks of at most
/// <see cref="BundleTransfer.ChunkSize"/> bytes, each acknowledged, a few in flight at a time.
/// </summary>
public static class BundleRequests
{
    /// <summary>
    /// The operator is about to upload a bundle it packed. Answered with <see cref="BundleReplies.UploadAccepted"/>
    /// (send the chunks), <see cref="BundleReplies.BundleStored"/> (the controller holds that sha256 already: nothing
    /// to send) or <see cref="BundleReplies.UploadRefused"/>.
    /// </summary>
    public sealed record BeginUpload(FormulaId Formula, string Sha256, long Size) : IWireMessage;

    /// <summary>The bytes at <paramref name="Offset"/> of an upload; answered with <see cref="BundleReplies.ChunkAccepted"/> or a refusal.</summary>
    public sealed record UploadChunk(string UploadId, long Offset, byte[] Data) : IChunkMessage
    {
        public IChunkMessage WithData(byte[] data) => this with { Data = data };
    }

    /// <summary>Every byte is sent: the controller checks size, sha256 and content, then stores it (<see cref="BundleReplies.BundleStored"/>).</summary>
    public sealed record FinishUpload(string UploadId) : IWireMessage;

    /// <summary>The sender gives up on an upload; what arrived is removed. Not answered.</summary>
    public sealed record AbandonUpload(string UploadId) : IWireMessage;

    /// <summary>An agent asks for bytes of a stored bundle; answered with <see cref="BundleReplies.BundleChunk"/> or <see cref="BundleReplies.BundleUnavailable"/>.</summary>
    public sealed record GetBundleChunk(string Sha256, long Offset, int Length) : IWireMessage;
}

/// <summary>What the controller answers about bundles.</summary>
public static class BundleReplies
{
    /// <summary>Send the chunks of the upload, each at most <paramref name="ChunkSize"/> bytes, in order.</summary>
    public sealed record UploadAccepted(string UploadId, int ChunkSize) : IWireMessage;

    /// <summary>The upload's bytes so far: <paramref name="Received"/>.</summary>
    public sealed record ChunkAccepted(string UploadId, long Received) : IWireMessage;

    /// <summary>The bundle is in formula storage, checked; <paramref name="Transferred"/> is false when it already was.</summary>
    public sealed record BundleStored(FormulaRef Formula, bool Transferred) : IWireMessage;

    /// <summary>The upload was refused and nothing was stored; <paramref name="Kind"/> gives the exit code.</summary>
    public sealed record UploadRefused(RejectionKind Kind, string Reason) : IWireMessage;

    /// <summary>
    /// Bytes of a stored bundle from <paramref name="Offset"/>; <paramref name="Size"/> is the whole bundle's, so the
    /// reader knows when it has everything (an empty chunk at the end).
    /// </summary>
    public sealed record BundleChunk(string Sha256, long Offset, long Size, byte[] Data) : IChunkMessage
    {
        public IChunkMessage WithData(byte[] data) => this with { Data = data };
    }

    /// <summary>The bundle cannot be served (not stored, unreadable); the reason is a sentence.</summary>
    public sealed record BundleUnavailable(string Sha256, string Reason, bool NotStored) : IWireMessage;
}

/// <summary>The transfer's fixed sizes and names.</summary>
public static class BundleTransfer
{
    /// <summary>
    /// Bytes per chunk: far below the remote frame size, and below the large object heap's threshold even with its
    /// header, so every buffer a chunk passes through is a cheap, short-lived object.
    /// </summary>
    public const int ChunkSize = 64 * 1024;

    /// <summary>Chunks in flight at once, in either direction: enough to hide a round trip, little enough to keep memory flat.</summary>
    public const int Window = 4;

    /// <summary>The controller's upload receiver, registered with the ClusterClient receptionist.</summary>
    public const string UploadsActorName = "formula-uploads";

    /// <summary>The controller's bundle server, found by agents through the store.</summary>
    public const string BundlesActorName = "formula-bundles";

    public const string UploadsPath = "/user/" + UploadsActorName;
}
