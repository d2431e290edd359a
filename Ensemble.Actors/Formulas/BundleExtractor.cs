using System.Formats.Tar;
using System.IO.Compression;

namespace Ensemble.Formulas;

/// <summary>
/// Unpacks a formula bundle, treating it as hostile. The sha256 is checked before anything is written. Only
/// directories and regular files are accepted: every link entry (symbolic or hard) is refused, as are devices and
/// fifos, entry names that are absolute, contain '..' or a backslash, or resolve outside the target. The caps of
/// <see cref="FormulaLimits"/> that packing checks are checked again here: the bundle's size before anything else,
/// entry count, path depth and name lengths per entry, and each file's and the total uncompressed size while reading. On refusal whatever this call created in the target is removed and a
/// <see cref="BundleRejectedException"/> names the entry and the reason. Only rwx mode bits are restored.
/// A target that exists and is not empty is refused with an <see cref="IOException"/> before anything is written.
/// </summary>
public static class BundleExtractor
{
    public static void Extract(byte[] bundle, string expectedSha256, string targetDirectory, FormulaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(expectedSha256);
        limits ??= FormulaLimits.Default;
        if (bundle.Length > limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle is {FormulaLimits.Size(bundle.Length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle");

        var actual = FormulaPacker.Sha256Hex(bundle);
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
            new Unpacker(target, limits).Run(bundle);
        }
        catch
        {
            RemoveCreated(target, existed);
            throw;
        }
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

    /// <summary>One extraction run: keeps the counters and the directory modes to apply last.</summary>
    private sealed class Unpacker(string target, FormulaLimits limits)
    {
        private readonly List<(string Path, UnixFileMode Mode)> directoryModes = [];
        private long totalBytes;
        private int entries;

        public void Run(byte[] bundle)
        {
            try
            {
                using var gzip = new GZipStream(new MemoryStream(bundle, writable: false), CompressionMode.Decompress);
                // Headers and padding are bounded too, so a bomb made of metadata cannot run forever.
                using var bounded = new BoundedReadStream(gzip, limits.MaxTotalBytes + (limits.MaxEntries + 4L) * 8192);
                using var reader = new TarReader(bounded);
                while (reader.GetNextEntry(copyData: false) is { } entry)
                    Unpack(entry);
            }
            catch (InvalidDataException e)
            {
                throw new BundleRejectedException($"bundle is not a valid gzipped tar archive: {e.Message}");
            }
            catch (Exception e) when (e is FormatException or EndOfStreamException)
            {
                throw new BundleRejectedException($"bundle is not a valid gzipped tar archive: {e.Message}");
            }

            // Applied last so a read-only directory does not stop its own contents from being written.
            for (var i = directoryModes.Count - 1; i >= 0; i--)
                UnixModes.Set(directoryModes[i].Path, directoryModes[i].Mode);
        }

        private void Unpack(TarEntry entry)
        {
            if (++entries > limits.MaxEntries)
                throw Reject(entry, $"more than {FormulaLimits.Count(limits.MaxEntries)} entries, the limit for a formula");

            switch (entry.EntryType)
            {
                case TarEntryType.GlobalExtendedAttributes:
                    return;
                case TarEntryType.Directory:
                    var dir = Resolve(entry);
                    if (dir == target) return;
                    CreateDirectory(entry, dir);
                    directoryModes.Add((dir, entry.Mode & UnixModes.PermissionMask));
                    return;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    WriteFile(entry, Resolve(entry));
                    return;
                case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                    throw Reject(entry, "links are not allowed in formula bundles");
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                    throw Reject(entry, "device and fifo entries are not allowed");
                default:
                    throw Reject(entry, $"unsupported entry type {entry.EntryType}");
            }
        }

        private string Resolve(TarEntry entry)
        {
            var name = entry.Name;
            if (name.Length == 0 || name.Contains('\0'))
                throw Reject(entry, "empty or malformed name");
            if (name.StartsWith('/') || Path.IsPathRooted(name))
                throw Reject(entry, "absolute path");
            if (name.Contains('\\'))
                throw Reject(entry, "backslash in name");

            var segments = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments.Contains(".."))
                throw Reject(entry, "'..' segment");
            var relative = string.Join('/', segments.Where(s => s != "."));
            if (relative.Length == 0) return target;
            if (FormulaTree.PathProblems(relative, limits).FirstOrDefault() is { } problem)
                throw Reject(entry, problem.Message);

            var full = Path.GetFullPath(Path.Combine(target, relative));
            if (!full.StartsWith(target + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw Reject(entry, "resolves outside the target directory");
            return full;
        }

        private void CreateDirectory(TarEntry entry, string path)
        {
            if (File.Exists(path)) throw Reject(entry, "a file of that name was already extracted");
            Directory.CreateDirectory(path);
        }

        private void WriteFile(TarEntry entry, string path)
        {
            if (path == target) throw Reject(entry, "a file cannot replace the target directory");
            if (entry.Length > limits.MaxFileBytes)
                throw Reject(entry, FileTooLarge(entry.Length));
            if (entry.Length > limits.MaxTotalBytes - totalBytes)
                throw Reject(entry, TotalTooLarge());

            var parent = Path.GetDirectoryName(path)!;
            if (File.Exists(parent)) throw Reject(entry, "its parent was extracted as a file");
            Directory.CreateDirectory(parent);

            FileStream output;
            try
            {
                // CreateNew: a duplicate entry must not overwrite, nor follow, what is already there.
                output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            }
            catch (IOException e)
            {
                throw Reject(entry, $"cannot create file ({e.Message})");
            }

            using (output)
            {
                if (entry.DataStream is { } data) Copy(entry, data, output);
            }
            UnixModes.Set(path, entry.Mode & UnixModes.PermissionMask);
        }

        // Counts the bytes actually read; the header's size is not trusted.
        private void Copy(TarEntry entry, Stream data, Stream output)
        {
            var buffer = new byte[81920];
            long fileBytes = 0;
            int read;
            while ((read = data.Read(buffer)) > 0)
            {
                totalBytes += read;
                fileBytes += read;
                if (fileBytes > limits.MaxFileBytes)
                    throw Reject(entry, FileTooLarge(fileBytes));
                if (totalBytes > limits.MaxTotalBytes)
                    throw Reject(entry, TotalTooLarge());
                output.Write(buffer, 0, read);
            }
        }

        private string FileTooLarge(long size) =>
            $"{FormulaLimits.Size(size, limits.MaxFileBytes)} is over the {FormulaLimits.Size(limits.MaxFileBytes)} limit for one file in a formula";

        private string TotalTooLarge() =>
            $"uncompressed size exceeds {FormulaLimits.Size(limits.MaxTotalBytes)}, the limit for a formula";

        private static BundleRejectedException Reject(TarEntry entry, string reason) =>
            new($"bundle entry '{entry.Name}' refused: {reason}");
    }
}

/// <summary>A read-only stream that refuses to yield more than a fixed number of bytes.</summary>
internal sealed class BoundedReadStream(Stream inner, long limit) : Stream
{
    private long consumed;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        consumed += read;
        if (consumed > limit)
            throw new BundleRejectedException($"bundle decompresses to more than {limit} bytes");
        return read;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => consumed; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
