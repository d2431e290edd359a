using System.Buffers;
using System.Security.Cryptography;

namespace Ensemble.Formulas;

/// <summary>
/// Bundle files and their hashes, always streamed through one small buffer: checking or copying a bundle costs the
/// same memory whatever its size.
/// </summary>
public static class BundleFiles
{
    /// <summary>Under the large object heap's threshold (85,000 bytes), so buffers are cheap, short-lived gen-0 objects.</summary>
    public const int BufferSize = 64 * 1024;

    /// <summary>Opens a bundle file for one sequential read; it may be renamed or deleted meanwhile.</summary>
    public static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.SequentialScan);

    /// <summary>Lowercase hex sha256, the form every bundle key uses.</summary>
    public static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>
    /// The sha256 of what is left of <paramref name="stream"/>, read to its end on the calling thread: for callers that
    /// are synchronous already (unpacking). Blocking on the asynchronous variant instead would hold a pool thread
    /// while it waits for another, and a thousand units unpacking at once would starve the actor system's threads.
    /// </summary>
    public static string Sha256Hex(Stream stream)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = stream.Read(buffer, 0, BufferSize)) > 0)
                hash.AppendData(buffer, 0, read);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return Hex(hash);
    }

    /// <summary>The sha256 of what is left of <paramref name="stream"/>, read to its end.</summary>
    public static async Task<string> Sha256HexAsync(Stream stream, CancellationToken ct = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, BufferSize), ct).ConfigureAwait(false)) > 0)
                hash.AppendData(buffer, 0, read);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return Hex(hash);
    }

    /// <summary>The sha256 of the file at <paramref name="path"/>.</summary>
    public static async Task<string> Sha256HexAsync(string path, CancellationToken ct = default)
    {
        await using var stream = OpenRead(path);
        return await Sha256HexAsync(stream, ct).ConfigureAwait(false);
    }

    /// <summary>Lowercase hex of the hash so far; the hash starts again.</summary>
    public static string Hex(IncrementalHash hash) => Convert.ToHexStringLower(hash.GetHashAndReset());

    /// <summary>A fresh name for a temporary file in <paramref name="directory"/>, which is created if missing.</summary>
    public static string TempPath(string directory, string prefix, string extension = ".tmp")
    {
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, $"{prefix}{Guid.NewGuid():N}{extension}");
    }

    /// <summary>Is <paramref name="key"/> a well-formed sha256 (64 hex digits)? Keys become file names and store paths.</summary>
    public static bool IsSha256(string? key) => key is { Length: 64 } && key.All(char.IsAsciiHexDigit);
}
