using System.Formats.Tar;
using System.IO.Compression;

namespace Ensemble.Formulas;

/// <summary>What <see cref="BundleEntries.Walk"/> hands on: each accepted directory and regular file of a bundle.</summary>
internal interface IBundleVisitor
{
    /// <summary>A directory; <paramref name="relativePath"/> is "" for the bundle's top directory.</summary>
    void Directory(TarEntry entry, string relativePath, UnixFileMode mode);

    /// <summary>A regular file; <paramref name="content"/> may be read (counted against the caps) or left alone.</summary>
    void File(TarEntry entry, string relativePath, UnixFileMode mode, Stream content);
}

/// <summary>
/// Walks a formula bundle's entries as hostile input, the one set of rules unpacking and inspecting an upload share.
/// Only directories and regular files are accepted: every link entry (symbolic or hard) is refused, as are devices
/// and fifos, names that are empty, absolute, contain '..' or a backslash, or break the name rules of formulas, a
/// name that appears twice, and a path below a file. The caps of <see cref="FormulaLimits"/> are applied as the
/// archive is read: entries, each file's size and the uncompressed total (counted as read, not as the headers
/// claim), and everything decompressed including headers. Refusals are <see cref="BundleRejectedException"/>s naming
/// the entry. Reading is streamed: memory stays at a few buffers whatever the bundle's size.
/// </summary>
internal static class BundleEntries
{
    public static void Walk(Stream bundle, FormulaLimits limits, IBundleVisitor visitor)
    {
        try
        {
            using var gzip = new GZipStream(bundle, CompressionMode.Decompress, leaveOpen: true);
            // Headers and padding are bounded too, so a bomb made of metadata cannot run forever.
            using var bounded = new BoundedReadStream(gzip, limits.MaxTotalBytes + (limits.MaxEntries + 4L) * 8192);
            using var reader = new TarReader(bounded);
            var walk = new Walker(limits, visitor);
            while (reader.GetNextEntry(copyData: false) is { } entry)
                walk.Visit(entry);
        }
        catch (InvalidDataException e)
        {
            throw new BundleRejectedException($"bundle is not a valid gzipped tar archive: {e.Message}");
        }
        catch (Exception e) when (e is FormatException or EndOfStreamException)
        {
            throw new BundleRejectedException($"bundle is not a valid gzipped tar archive: {e.Message}");
        }
    }

    /// <summary>One walk: the counters and the names seen.</summary>
    private sealed class Walker(FormulaLimits limits, IBundleVisitor visitor)
    {
        /// <summary>Each accepted path and whether it is a directory.</summary>
        private readonly Dictionary<string, bool> _seen = new(StringComparer.Ordinal);
        private long _totalBytes;
        private int _entries;

        public void Visit(TarEntry entry)
        {
            if (++_entries > limits.MaxEntries)
                throw Reject(entry, $"more than {FormulaLimits.Count(limits.MaxEntries)} entries, the limit for a formula");

            switch (entry.EntryType)
            {
                case TarEntryType.GlobalExtendedAttributes:
                    return;
                case TarEntryType.Directory:
                    var dir = RelativePath(entry);
                    if (dir.Length > 0)
                    {
                        if (_seen.TryGetValue(dir, out var isDirectory) && !isDirectory) throw Reject(entry, "a file of that name was already extracted");
                        Admit(entry, dir, directory: true);
                    }
                    visitor.Directory(entry, dir, entry.Mode & UnixModes.PermissionMask);
                    return;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    var file = RelativePath(entry);
                    if (file.Length == 0) throw Reject(entry, "a file cannot replace the target directory");
                    if (_seen.ContainsKey(file)) throw Reject(entry, "cannot create file (a file or directory of that name was already extracted)");
                    if (entry.Length > limits.MaxFileBytes) throw Reject(entry, FileTooLarge(entry.Length));
                    if (entry.Length > limits.MaxTotalBytes - _totalBytes) throw Reject(entry, TotalTooLarge());
                    Admit(entry, file, directory: false);
                    var content = new CountedContent(this, entry, entry.DataStream ?? Stream.Null);
                    visitor.File(entry, file, entry.Mode & UnixModes.PermissionMask, content);
                    return;
                case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                    throw Reject(entry, "links are not allowed in formula bundles");
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                    throw Reject(entry, "device and fifo entries are not allowed");
                default:
                    throw Reject(entry, $"unsupported entry type {entry.EntryType}");
            }
        }

        // Nothing may live below a file: 'a' as a file, then 'a/b', would need 'a' to be both.
        private void Admit(TarEntry entry, string path, bool directory)
        {
            for (var slash = path.IndexOf('/'); slash >= 0; slash = path.IndexOf('/', slash + 1))
                if (_seen.TryGetValue(path[..slash], out var isDirectory) && !isDirectory)
                    throw Reject(entry, "its parent was extracted as a file");
            _seen[path] = directory;
        }

        private string RelativePath(TarEntry entry)
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
            if (relative.Length == 0) return relative;
            if (FormulaTree.PathProblems(relative, limits).FirstOrDefault() is { } problem)
                throw Reject(entry, problem.Message);
            return relative;
        }

        public void Count(TarEntry entry, long fileBytes, int read)
        {
            _totalBytes += read;
            if (fileBytes > limits.MaxFileBytes)
                throw Reject(entry, FileTooLarge(fileBytes));
            if (_totalBytes > limits.MaxTotalBytes)
                throw Reject(entry, TotalTooLarge());
        }

        private string FileTooLarge(long size) =>
            $"{FormulaLimits.Size(size, limits.MaxFileBytes)} is over the {FormulaLimits.Size(limits.MaxFileBytes)} limit for one file in a formula";

        private string TotalTooLarge() =>
            $"uncompressed size exceeds {FormulaLimits.Size(limits.MaxTotalBytes)}, the limit for a formula";
    }

    public static BundleRejectedException Reject(TarEntry entry, string reason) =>
        new($"bundle entry '{entry.Name}' refused: {reason}");

    /// <summary>A file's content, counted as it is read; the header's size is not trusted.</summary>
    private sealed class CountedContent(Walker walker, TarEntry entry, Stream inner) : Stream
    {
        private long _read;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            _read += read;
            walker.Count(entry, _read, read);
            return read;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
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
