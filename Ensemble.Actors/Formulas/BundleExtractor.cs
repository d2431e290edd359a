using System.Formats.Tar;
using System.Security.Cryptography;

namespace Ensemble.Formulas;

/// <summary>
/// Unpacks a formula bundle, treating it as hostile. The sha256 is checked before anything is written, and again over
/// the bytes actually unpacked, so a file changed between the two reads is refused too. The entry rules and caps are
/// <see cref="BundleEntries"/>'s; on top of them every path must resolve inside the target. On refusal whatever this
/// call created in the target is removed and a <see cref="BundleRejectedException"/> names the entry and the reason.
/// Only rwx mode bits are restored. A target that exists and is not empty is refused with an <see cref="IOException"/>
/// before anything is written. The bundle is streamed: memory stays at a few buffers whatever its size.
/// </summary>
public static class BundleExtractor
{
    /// <summary>Unpacks the bundle file at <paramref name="bundlePath"/>.</summary>
    public static void Extract(string bundlePath, string expectedSha256, string targetDirectory, FormulaLimits? limits = null)
    {
        using var stream = BundleFiles.OpenRead(bundlePath);
        Extract(stream, expectedSha256, targetDirectory, limits);
    }

    /// <summary>Unpacks <paramref name="bundle"/>, a seekable stream read from its start (twice: to check, then to unpack).</summary>
    public static void Extract(Stream bundle, string expectedSha256, string targetDirectory, FormulaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(expectedSha256);
        if (!bundle.CanSeek) throw new ArgumentException("the bundle stream must be seekable: it is checked before it is unpacked", nameof(bundle));
        limits ??= FormulaLimits.Default;
        if (bundle.Length > limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle is {FormulaLimits.Size(bundle.Length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle");

        bundle.Position = 0;
        var actual = BundleFiles.Sha256Hex(bundle);
        if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
            throw new BundleRejectedException($"bundle sha256 mismatch: expected {expectedSha256}, got {actual}");

        var target = Path.GetFullPath(targetDirectory);
        var existed = Directory.Exists(target);
        if (existed && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException($"extraction target {target} is not empty; extract into a new or empty directory");
        if (File.Exists(target))
            throw new IOException($"extraction target {target} is a file; extract into a new or empty directory");

        Directory.CreateDirectory(target);
        try
        {
            bundle.Position = 0;
            using var hashing = new HashingReadStream(bundle);
            var unpacker = new Unpacker(target);
            BundleEntries.Walk(hashing, limits, unpacker);
            hashing.Drain();
            var unpacked = hashing.Sha256Hex();
            if (!string.Equals(unpacked, expectedSha256, StringComparison.OrdinalIgnoreCase))
                throw new BundleRejectedException($"bundle changed while it was unpacked: expected sha256 {expectedSha256}, got {unpacked}");
            unpacker.ApplyDirectoryModes();
        }
        catch
        {
            RemoveCreated(target, existed);
            throw;
        }
    }

    /// <summary>Unpacks a bundle held in memory (tests and small tools); the product unpacks files.</summary>
    public static void Extract(byte[] bundle, string expectedSha256, string targetDirectory, FormulaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        using var stream = new MemoryStream(bundle, writable: false);
        Extract(stream, expectedSha256, targetDirectory, limits);
    }

    // The target was new or empty, so everything in it is ours to remove.
    private static void RemoveCreated(string target, bool existed)
    {
        if (!Directory.Exists(target)) return;
        if (!existed)
        {
            Directory.Delete(target, recursive: true);
            return;
        }
        foreach (var dir in Directory.EnumerateDirectories(target)) Directory.Delete(dir, recursive: true);
        foreach (var file in Directory.EnumerateFiles(target)) File.Delete(file);
    }

    /// <summary>Writes what the walk accepts; keeps the directory modes to apply last.</summary>
    private sealed class Unpacker(string target) : IBundleVisitor
    {
        private readonly List<(string Path, UnixFileMode Mode)> directoryModes = [];

        public void Directory(TarEntry entry, string relativePath, UnixFileMode mode)
        {
            if (relativePath.Length == 0) return;
            var dir = Resolve(entry, relativePath);
            System.IO.Directory.CreateDirectory(dir);
            directoryModes.Add((dir, mode));
        }

        public void File(TarEntry entry, string relativePath, UnixFileMode mode, Stream content)
        {
            var path = Resolve(entry, relativePath);
            System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            FileStream output;
            try
            {
                // CreateNew: a duplicate entry must not overwrite, nor follow, what is already there.
                output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
            }
            catch (IOException e)
            {
                throw BundleEntries.Reject(entry, $"cannot create file ({e.Message})");
            }
            using (output)
            {
                var buffer = new byte[BundleFiles.BufferSize];
                int read;
                while ((read = content.Read(buffer)) > 0) output.Write(buffer, 0, read);
            }
            UnixModes.Set(path, mode);
        }

        // Applied last so a read-only directory does not stop its own contents from being written.
        public void ApplyDirectoryModes()
        {
            for (var i = directoryModes.Count - 1; i >= 0; i--)
                UnixModes.Set(directoryModes[i].Path, directoryModes[i].Mode);
        }

        // The walk has refused '..' and absolute names already; this is the last line of defence.
        private string Resolve(TarEntry entry, string relativePath)
        {
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(target, relativePath));
            if (!full.StartsWith(target + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw BundleEntries.Reject(entry, "resolves outside the target directory");
            return full;
        }
    }
}

/// <summary>Hashes every byte read through it; <see cref="Drain"/> reads the rest so the hash covers the whole stream.</summary>
internal sealed class HashingReadStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long BytesRead { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        _hash.AppendData(buffer[..read]);
        BytesRead += read;
        return read;
    }

    public void Drain()
    {
        var buffer = new byte[BundleFiles.BufferSize];
        while (Read(buffer) > 0) { }
    }

    public string Sha256Hex() => BundleFiles.Hex(_hash);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
