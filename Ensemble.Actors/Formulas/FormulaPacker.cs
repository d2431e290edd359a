using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Ensemble.Formulas;

/// <summary>
/// Packs a formula directory into a deterministic gzipped ustar archive: same content, same bytes, same sha256.
/// Entries are sorted by ordinal '/'-separated name (directories included, named with a trailing '/'), with mtime
/// at the Unix epoch, uid/gid 0, empty owner names and the rwx bits of each file. A <c>.git</c> directory is
/// skipped. The tree is checked against <see cref="FormulaLimits"/> from file sizes before any file is read; files
/// are streamed, never loaded whole, and the bundle is written to a file while it is hashed, so packing costs a few
/// buffers of memory whatever the formula's size.
/// </summary>
public static class FormulaPacker
{
    private static readonly DateTimeOffset FixedTime = DateTimeOffset.UnixEpoch;

    /// <summary>
    /// zlib-ng's output depends on how its input is split: a pause for input between its 32 KiB window refills
    /// changes its match choices. Feeding it in pieces that are multiples of 32 KiB and at least 64 KiB keeps the
    /// refills where a single write of the whole archive put them, so bundles keep the hashes they always had.
    /// </summary>
    private const int CompressorChunk = 1024 * 1024;

    /// <summary>
    /// Packs <paramref name="formula"/> as it is on disk now into a new file in <paramref name="directory"/> (the
    /// system's temporary directory when null); <paramref name="revisionOverride"/> changes only the archived
    /// revision. The returned bundle owns its file: dispose it to delete the file.
    /// </summary>
    /// <exception cref="FormulaValidationException">The formula breaks a limit or holds what a formula may not (links, fifos).</exception>
    /// <exception cref="RepositoryAccessException">A file or directory of the formula cannot be read.</exception>
    public static FormulaBundle Pack(Formula formula, int? revisionOverride = null, FormulaLimits? limits = null, string? directory = null)
    {
        var (id, scan, rewrite, checkedLimits) = Prepare(formula, revisionOverride, limits);
        var path = BundleFiles.TempPath(directory ?? Path.GetTempPath(), "ensemble-bundle-", ".tar.gz");
        try
        {
            FileStream file;
            try
            {
                file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"cannot write the packed formula {path}: {RepositoryAccessException.Reason(e)}; make the temporary directory writable and check the disk has room", e);
            }
            (string Sha256, long Size) packed;
            using (file)
            {
                packed = Build(formula.Directory, scan.Entries, rewrite, checkedLimits, file);
            }
            return new FormulaBundle(id, path, packed.Sha256, packed.Size, ownsFile: true);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>
    /// The sha256 <see cref="Pack"/> would give, without writing the bundle anywhere: how the author's edit loop
    /// compares a repository's content with what is deployed.
    /// </summary>
    public static string Hash(Formula formula, int? revisionOverride = null, FormulaLimits? limits = null)
    {
        var (_, scan, rewrite, checkedLimits) = Prepare(formula, revisionOverride, limits);
        return Build(formula.Directory, scan.Entries, rewrite, checkedLimits, sink: null).Sha256;
    }

    private static (FormulaId Id, FormulaTreeScan Scan, int? Rewrite, FormulaLimits Limits) Prepare(Formula formula, int? revisionOverride, FormulaLimits? limits)
    {
        ArgumentNullException.ThrowIfNull(formula);
        limits ??= FormulaLimits.Default;
        if (revisionOverride < 0) throw new ArgumentOutOfRangeException(nameof(revisionOverride), "a revision is a non-negative integer");
        if (revisionOverride > limits.MaxRevision)
            throw new FormulaValidationException(formula.Directory, [new FormulaProblem(FormulaLoader.MetadataFile, "revision",
                $"revision {revisionOverride.Value.ToString(CultureInfo.InvariantCulture)} is over the limit of {FormulaLimits.Count(limits.MaxRevision)}; deploy it under a new formula name")]);

        // The formula was checked when it was loaded, but the directory may have changed since.
        var scan = FormulaTree.Walk(formula.Directory, limits);
        var problems = new List<FormulaProblem>();
        FormulaTree.Check(scan, limits, problems);
        if (problems.Count > 0) throw new FormulaValidationException(formula.Directory, problems);

        // Rewriting an equal revision could still change its spelling ("03", quotes) and thereby the hash; leave it alone.
        var rewrite = revisionOverride is { } r && r != formula.Metadata.Revision ? revisionOverride : null;
        return (new FormulaId(formula.Metadata.Name, revisionOverride ?? formula.Metadata.Revision), scan, rewrite, limits);
    }

    /// <summary>Lowercase hex sha256, the form every bundle key uses.</summary>
    public static string Sha256Hex(byte[] bytes) => BundleFiles.Sha256Hex(bytes);

    private static (string Sha256, long Size) Build(string directory, List<FormulaTreeEntry> entries, int? revision, FormulaLimits limits, Stream? sink)
    {
        using var output = new BundleSink(sink, limits.MaxBundleBytes);
        var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
        var chunks = new ChunkingStream(gzip, CompressorChunk);
        var writer = new TarWriter(chunks, TarEntryFormat.Ustar, leaveOpen: true);
        var finished = false;
        try
        {
            foreach (var entry in entries)
            {
                if (entry.Kind == FormulaTreeEntryKind.Directory)
                {
                    writer.WriteEntry(NewEntry(TarEntryType.Directory, entry));
                    continue;
                }
                var file = NewEntry(TarEntryType.RegularFile, entry);
                using var data = OpenContent(entry, revision, directory, limits);
                file.DataStream = data;
                writer.WriteEntry(file);
            }
            // Each of these writes what it still holds into the next: the archive's end, the last chunk, the gzip trailer.
            writer.Dispose();
            chunks.Dispose();
            gzip.Dispose();
            finished = true;
        }
        catch (BundleSink.FullException)
        {
            throw new FormulaValidationException(directory, [new FormulaProblem("(bundle)", "size",
                $"the packed formula is over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle; keep large or incompressible files (archives, media, binaries) out of it and have a hook fetch them")]);
        }
        catch (BundleSink.SinkException e)
        {
            throw (IOException)e.InnerException!;
        }
        catch (Exception e) when (e is (IOException or UnauthorizedAccessException) and not RepositoryAccessException)
        {
            throw RepositoryAccessException.Reading("formula directory", directory, e);
        }
        finally
        {
            if (!finished)
            {
                // Closing after a failure writes too; into a discarded sink, so it cannot replace the real error.
                output.Discard();
                chunks.Discard();
                writer.Dispose();
                gzip.Dispose();
            }
        }
        return (output.Finish(), output.Length);
    }

    private static UstarTarEntry NewEntry(TarEntryType type, FormulaTreeEntry entry)
    {
        try
        {
            return new UstarTarEntry(type, entry.ArchiveName)
            {
                ModificationTime = FixedTime,
                Uid = 0,
                Gid = 0,
                UserName = "",
                GroupName = "",
                Mode = UnixModes.Get(entry.FullPath),
            };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("file", entry.FullPath, e);
        }
    }

    private static Stream OpenContent(FormulaTreeEntry entry, int? revision, string directory, FormulaLimits limits)
    {
        if (revision is { } n)
        {
            if (entry.RelativePath == FormulaLoader.MetadataFile)
            {
                var problems = new List<FormulaProblem>();
                var original = FormulaYaml.ReadBounded(entry.FullPath, FormulaLoader.MetadataFile, limits.MaxYamlBytes, "the limit for a YAML file", problems)
                    ?? throw new FormulaValidationException(directory, problems);
                var legacy = FormulaLoader.KindOf(Path.Combine(directory, FormulaLoader.RevisionFile)) == FileKind.Regular;
                return new MemoryStream(MetadataRevision.Rewrite(original, n, appendWhenMissing: !legacy, directory, limits));
            }
            if (entry.RelativePath == FormulaLoader.RevisionFile)
                return new MemoryStream(System.Text.Encoding.ASCII.GetBytes(n.ToString(CultureInfo.InvariantCulture) + "\n"));
        }
        try
        {
            var file = new FileStream(entry.FullPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
            return new ExactLengthStream(file, entry, directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("file", entry.FullPath, e);
        }
    }

    /// <summary>
    /// A file's content as measured when the tree was checked: exactly that many bytes, or a refusal. The archive
    /// header already holds the length, and a file that grew must not push the bundle past the checked caps.
    /// </summary>
    private sealed class ExactLengthStream(FileStream file, FormulaTreeEntry entry, string directory) : Stream
    {
        private long consumed;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var remaining = entry.Length - consumed;
            if (remaining == 0)
            {
                Span<byte> probe = stackalloc byte[1];
                if (ReadFile(probe) > 0) throw Changed("grew");
                return 0;
            }
            var read = ReadFile(buffer[..(int)Math.Min(buffer.Length, remaining)]);
            if (read == 0) throw Changed("shrank");
            consumed += read;
            return read;
        }

        private int ReadFile(Span<byte> buffer)
        {
            try
            {
                return file.Read(buffer);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw RepositoryAccessException.Reading("file", entry.FullPath, e);
            }
        }

        private FormulaValidationException Changed(string how) => new(directory, [new FormulaProblem(entry.RelativePath, "size",
            $"the file {how} while the formula was being packed (it had {FormulaLimits.Count(entry.Length)} bytes); try again when nothing is writing to the formula")]);

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => entry.Length;
        public override long Position { get => consumed; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) file.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Passes writes on in pieces of exactly <paramref name="chunk"/> bytes (the last one shorter).</summary>
    private sealed class ChunkingStream(Stream inner, int chunk) : Stream
    {
        private readonly byte[] buffer = new byte[chunk];
        private int filled;

        public override void Write(byte[] source, int offset, int count) => Write(source.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> source)
        {
            while (source.Length > 0)
            {
                var n = Math.Min(source.Length, buffer.Length - filled);
                source[..n].CopyTo(buffer.AsSpan(filled));
                filled += n;
                source = source[n..];
                if (filled == buffer.Length) Drain();
            }
        }

        private bool discarded;

        public void Discard() => discarded = true;

        private void Drain()
        {
            if (!discarded) inner.Write(buffer, 0, filled);
            filled = 0;
        }

        // A flush mid-archive would split the compressor's input; only the end drains a partial chunk.
        public override void Flush() { }

        protected override void Dispose(bool disposing)
        {
            if (disposing && filled > 0) Drain();
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>
    /// Where the compressed bundle goes: it pins the gzip header's mtime and OS bytes (outside the CRC, so hosts agree
    /// on the bytes), hashes what passes, refuses to pass more than the cap, and writes it on to the bundle's file
    /// (or nowhere, when only the hash is wanted). Memory: none beyond the caller's buffers.
    /// </summary>
    private sealed class BundleSink(Stream? inner, long cap) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;
        private bool _discarded;

        public sealed class FullException() : Exception("bundle cap reached");

        /// <summary>Writing the bundle's file failed; kept apart from failures to read the formula.</summary>
        public sealed class SinkException(IOException inner) : Exception(inner.Message, inner);

        public void Discard() => _discarded = true;

        public string Finish() => BundleFiles.Hex(_hash);

        public override void Write(byte[] source, int offset, int count) => Write(source.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> source)
        {
            if (_discarded) return;
            if (_length + source.Length > cap) throw new FullException();
            if (_length < HeaderEnd)
            {
                // The header is the first ten bytes the compressor writes; patch a copy of them.
                Span<byte> head = stackalloc byte[(int)Math.Min(source.Length, HeaderEnd - _length)];
                source[..head.Length].CopyTo(head);
                for (var i = 0; i < head.Length; i++)
                {
                    var position = _length + i;
                    if (position is >= 4 and <= 7) head[i] = 0;
                    else if (position == 9) head[i] = 3;
                }
                Pass(head);
                source = source[head.Length..];
            }
            if (source.Length > 0) Pass(source);
        }

        private const long HeaderEnd = 10;

        private void Pass(ReadOnlySpan<byte> bytes)
        {
            _hash.AppendData(bytes);
            _length += bytes.Length;
            try
            {
                inner?.Write(bytes);
            }
            catch (IOException e)
            {
                throw new SinkException(e);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }

        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
