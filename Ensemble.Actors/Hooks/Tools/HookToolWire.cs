using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ensemble.Hooks.Tools;

/// <summary>A hook tool call as it crosses the agent's socket.</summary>
public sealed record HookToolRequest(string? Token, string? Tool, IReadOnlyList<string?>? Args);

/// <summary>The unit agent's answer to a <see cref="HookToolRequest"/>.</summary>
public sealed record HookToolResponse(int Exit, string? Stdout, string? Stderr);

/// <summary>Plain DTOs only: no type names are ever read from the wire.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(HookToolRequest))]
[JsonSerializable(typeof(HookToolResponse))]
internal sealed partial class HookToolJson : JsonSerializerContext;

/// <summary>
/// The hook tools' wire: one request per connection, each message a 4-byte big-endian length and that
/// many bytes of UTF-8 JSON.
/// </summary>
public static class HookToolWire
{
    /// <summary>Requests are a tool name and its arguments; anything near this is not a hook tool talking.</summary>
    public const int MaxRequestBytes = 1 << 20;

    /// <summary>Responses carry relation settings, which a formula may make large.</summary>
    public const int MaxResponseBytes = 64 << 20;

    public static byte[] Encode(HookToolRequest request) => JsonSerializer.SerializeToUtf8Bytes(request, HookToolJson.Default.HookToolRequest);

    public static byte[] Encode(HookToolResponse response) => JsonSerializer.SerializeToUtf8Bytes(response, HookToolJson.Default.HookToolResponse);

    /// <summary>The request, or null when the bytes are not one (malformed JSON, or no token or tool).</summary>
    public static HookToolRequest? DecodeRequest(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var request = JsonSerializer.Deserialize(bytes, HookToolJson.Default.HookToolRequest);
            return request is { Token: not null, Tool: not null } ? request : null;
        }
        catch (JsonException) { return null; }
    }

    public static HookToolResponse? DecodeResponse(ReadOnlySpan<byte> bytes)
    {
        try { return JsonSerializer.Deserialize(bytes, HookToolJson.Default.HookToolResponse); }
        catch (JsonException) { return null; }
    }

    public static async Task WriteFrameAsync(Stream stream, byte[] payload, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, payload.Length);
        await stream.WriteAsync(header, cancellationToken);
        await stream.WriteAsync(payload, cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }

    /// <summary>Reads one frame: its bytes, or the length it announced when that is over <paramref name="limit"/> (bytes null); null at end of stream.</summary>
    public static async Task<(byte[]? Payload, long Length)?> ReadFrameAsync(Stream stream, int limit, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        if (!await ReadExactlyOrEndAsync(stream, header, cancellationToken)) return null;
        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length > limit) return (null, length);
        var payload = new byte[length];
        if (!await ReadExactlyOrEndAsync(stream, payload, cancellationToken)) return null;
        return (payload, length);
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, cancellationToken);
            return true;
        }
        catch (EndOfStreamException) { return false; }
    }

    /// <summary>
    /// The client side, as `ensemble hook-tool` runs it: one call over the socket at <paramref name="socketPath"/>.
    /// Throws <see cref="SocketException"/> or <see cref="IOException"/> when the agent is not there.
    /// </summary>
    public static HookToolResponse Call(string socketPath, HookToolRequest request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        using var stream = new NetworkStream(socket, ownsSocket: false);
        // Synchronous: the client is a short-lived process doing one call, with nothing else to run meanwhile.
        var payload = Encode(request);
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, payload.Length);
        stream.Write(header);
        stream.Write(payload);
        stream.Flush();
        try { stream.ReadExactly(header); }
        catch (EndOfStreamException) { throw new IOException("the unit agent closed the connection without answering"); }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length > MaxResponseBytes) throw new IOException($"the unit agent's answer of {length} bytes is over the {MaxResponseBytes >> 20} MiB limit");
        var answer = new byte[length];
        try { stream.ReadExactly(answer); }
        catch (EndOfStreamException) { throw new IOException("the unit agent closed the connection in the middle of its answer"); }
        return DecodeResponse(answer) ?? throw new IOException("the unit agent's answer is not a hook tool response");
    }
}
