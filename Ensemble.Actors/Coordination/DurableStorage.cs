using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Ensemble.Coordination;

/// <summary>One mutation as written to the transaction log (the effect, not the request).</summary>
internal readonly record struct LoggedOp(LoggedOpKind Kind, string Path, byte[]? Data, long EphemeralOwner);

internal enum LoggedOpKind : byte { Create = 1, Delete = 2, SetData = 3 }

internal sealed record LoggedTxn(long Zxid, IReadOnlyList<LoggedOp> Ops);

internal sealed record SnapshotNode(
    string Path, byte[] Data, long Czxid, long Mzxid, long Pzxid, int Version, int Cversion, long EphemeralOwner);

internal sealed record LoadedSnapshot(long Zxid, List<SnapshotNode> Nodes);

/// <summary>
/// The files of an <see cref="EmbeddedCoordinationServer"/> data directory:
/// <list type="bullet">
/// <item><c>LOCK</c>: held open exclusively while a server owns the directory.</item>
/// <item><c>log.{startZxid:x16}</c>: append-only records, each <c>int32 LE payloadLength, uint32 LE crc32(payload), payload</c>;
///   payload = <c>byte format(1), int64 zxid, int32 opCount</c>, then per op <c>byte kind, string path</c> and
///   for Create <c>int32 dataLength, data, int64 ephemeralOwner</c>, for SetData <c>int32 dataLength, data</c>
///   (strings are BinaryWriter strings: 7-bit length prefix + UTF-8; integers little-endian).</item>
/// <item><c>snapshot.{zxid:x16}</c>: <c>"ENSNAP01", int64 zxid, int32 nodeCount</c>, then per node <c>string path,
///   int32 dataLength, data, int64 czxid, mzxid, pzxid, int32 version, cversion, int64 ephemeralOwner</c>,
///   then <c>uint32 LE crc32</c> of everything before it. Written as <c>.tmp</c>, fsync'ed, renamed.</item>
/// </list>
/// A snapshot at zxid Z makes every log record with zxid &lt;= Z redundant.
/// </summary>
internal sealed class DurableStorage : IDisposable
{
    private const int HeaderSize = 8;
    private const int MaxRecordSize = 256 * 1024 * 1024;
    private const byte RecordFormat = 1;
    private static readonly byte[] SnapshotMagic = "ENSNAP01"u8.ToArray();

    private readonly string directory;
    private readonly EmbeddedStoreOptions options;
    private readonly FileStream lockFile;
    private readonly MemoryStream scratch = new();
    private FileStream? log;
    private int recordsInLog;
    private Task? snapshotTask;
    private bool broken;

    private DurableStorage(string directory, EmbeddedStoreOptions options, FileStream lockFile)
    {
        this.directory = directory;
        this.options = options;
        this.lockFile = lockFile;
    }

    public string Directory => directory;

    /// <summary>Creates the directory, takes the exclusive lock and removes leftovers of interrupted snapshots.</summary>
    public static DurableStorage Acquire(string directory, EmbeddedStoreOptions options)
    {
        directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(directory);
        var lockPath = Path.Combine(directory, "LOCK");
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException(
                $"The coordination data directory '{directory}' is already in use by another EmbeddedCoordinationServer " +
                $"(could not lock '{lockPath}': {e.Message}).", e);
        }
        try
        {
            lockFile.SetLength(0);
            lockFile.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            lockFile.Flush();
            foreach (var tmp in System.IO.Directory.EnumerateFiles(directory, "*.tmp"))
                File.Delete(tmp);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
        return new DurableStorage(directory, options, lockFile);
    }

    private static string Hex(long zxid) => zxid.ToString("x16", CultureInfo.InvariantCulture);

    private static IEnumerable<(long Zxid, string Path)> Files(string directory, string prefix)
    {
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, prefix + "*"))
        {
            var suffix = Path.GetFileName(path)[prefix.Length..];
            if (suffix.Length == 16 && long.TryParse(suffix, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var zxid))
                yield return (zxid, path);
        }
    }

    // ---------------------------------------------------------------- snapshots

    /// <summary>The newest snapshot whose checksum verifies, or null.</summary>
    public LoadedSnapshot? LoadNewestSnapshot()
    {
        foreach (var (zxid, path) in Files(directory, "snapshot.").OrderByDescending(f => f.Zxid))
        {
            var loaded = TryReadSnapshot(path);
            if (loaded is not null && loaded.Zxid == zxid)
                return loaded;
        }
        return null;
    }

    private static LoadedSnapshot? TryReadSnapshot(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < SnapshotMagic.Length + 16) return null;
        var body = bytes.AsSpan(0, bytes.Length - 4);
        if (!body[..SnapshotMagic.Length].SequenceEqual(SnapshotMagic)) return null;
        if (System.IO.Hashing.Crc32.HashToUInt32(body) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4))) return null;
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes, SnapshotMagic.Length, body.Length - SnapshotMagic.Length), Encoding.UTF8);
            long zxid = reader.ReadInt64();
            int count = reader.ReadInt32();
            var nodes = new List<SnapshotNode>(count);
            for (int i = 0; i < count; i++)
            {
                string nodePath = reader.ReadString();
                byte[] data = reader.ReadBytes(reader.ReadInt32());
                nodes.Add(new SnapshotNode(nodePath, data, reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64(),
                    reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt64()));
            }
            return new LoadedSnapshot(zxid, nodes);
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }

    private void WriteSnapshot(long zxid, List<SnapshotNode> nodes)
    {
        var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(SnapshotMagic);
            writer.Write(zxid);
            writer.Write(nodes.Count);
            foreach (var n in nodes)
            {
                writer.Write(n.Path);
                writer.Write(n.Data.Length);
                writer.Write(n.Data);
                writer.Write(n.Czxid);
                writer.Write(n.Mzxid);
                writer.Write(n.Pzxid);
                writer.Write(n.Version);
                writer.Write(n.Cversion);
                writer.Write(n.EphemeralOwner);
            }
        }
        var body = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, System.IO.Hashing.Crc32.HashToUInt32(body));

        var final = Path.Combine(directory, "snapshot." + Hex(zxid));
        var tmp = final + ".tmp";
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(body);
            file.Write(crc);
            file.Flush(flushToDisk: true);
        }
        File.Move(tmp, final, overwrite: true);

        // Everything at or below zxid is now in the snapshot.
        foreach (var (snapZxid, path) in Files(directory, "snapshot.").ToList())
            if (snapZxid < zxid) TryDelete(path);
        foreach (var (logStart, path) in Files(directory, "log.").ToList())
            if (logStart <= zxid) TryDelete(path);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Called under the tree lock when <see cref="SnapshotDue"/>: starts a new log after <paramref name="zxid"/>
    /// and writes the captured tree as snapshot <paramref name="zxid"/> in the background.
    /// </summary>
    public void BeginSnapshot(long zxid, List<SnapshotNode> nodes)
    {
        StartLog(zxid + 1);
        snapshotTask = Task.Run(() => WriteSnapshot(zxid, nodes));
    }

    /// <summary>True when the current log has reached the threshold and no snapshot is being written.</summary>
    public bool SnapshotDue =>
        recordsInLog >= Math.Max(1, options.SnapshotThreshold) && (snapshotTask is null || snapshotTask.IsCompleted);

    // ---------------------------------------------------------------- log

    /// <summary>
    /// Replays every intact log record with zxid &gt; <paramref name="fromZxid"/> in order, truncating a torn or
    /// corrupt tail, then opens the last log for appending. Returns the last replayed zxid.
    /// </summary>
    public long ReplayAndOpenLog(long fromZxid, Action<LoggedTxn> apply)
    {
        long last = fromZxid;
        var logs = Files(directory, "log.").OrderBy(f => f.Zxid).ToList();
        string? appendTo = null;
        int appendRecords = 0;
        for (int f = 0; f < logs.Count; f++)
        {
            var path = logs[f].Path;
            byte[] bytes = File.ReadAllBytes(path);
            int offset = 0, records = 0;
            bool torn = false;
            while (offset < bytes.Length)
            {
                var payload = TryFrame(bytes, offset);
                if (payload is null) { torn = true; break; }
                var txn = DecodeTxn(payload.Value.Span, path, offset);
                if (txn.Zxid > last)
                {
                    if (txn.Zxid != last + 1)
                        throw new InvalidDataException(
                            $"Coordination log '{path}' jumps from zxid {last} to {txn.Zxid}: transactions are missing.");
                    apply(txn);
                    last = txn.Zxid;
                }
                offset += HeaderSize + payload.Value.Length;
                records++;
            }
            appendTo = path;
            appendRecords = records;
            if (torn)
            {
                using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None))
                {
                    fs.SetLength(offset);
                    fs.Flush(flushToDisk: true);
                }
                // Later logs cannot follow a hole; keep them aside for inspection rather than replaying them.
                for (int g = f + 1; g < logs.Count; g++)
                    File.Move(logs[g].Path, logs[g].Path + ".discarded", overwrite: true);
                break;
            }
        }

        if (appendTo is null)
        {
            StartLog(last + 1);
        }
        else
        {
            log = new FileStream(appendTo, FileMode.Open, FileAccess.Write, FileShare.Read, bufferSize: 0);
            log.Seek(0, SeekOrigin.End);
            recordsInLog = appendRecords;
        }
        return last;
    }

    private static ReadOnlyMemory<byte>? TryFrame(byte[] bytes, int offset)
    {
        if (bytes.Length - offset < HeaderSize) return null;
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
        if (length <= 0 || length > MaxRecordSize || length > bytes.Length - offset - HeaderSize) return null;
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
        var payload = new ReadOnlyMemory<byte>(bytes, offset + HeaderSize, length);
        if (System.IO.Hashing.Crc32.HashToUInt32(payload.Span) != crc) return null;
        return payload;
    }

    private static LoggedTxn DecodeTxn(ReadOnlySpan<byte> payload, string file, int offset)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(payload.ToArray()), Encoding.UTF8);
            if (reader.ReadByte() != RecordFormat) throw new InvalidDataException("unknown record format");
            long zxid = reader.ReadInt64();
            int count = reader.ReadInt32();
            var ops = new List<LoggedOp>(count);
            for (int i = 0; i < count; i++)
            {
                var kind = (LoggedOpKind)reader.ReadByte();
                string path = reader.ReadString();
                ops.Add(kind switch
                {
                    LoggedOpKind.Create => new LoggedOp(kind, path, reader.ReadBytes(reader.ReadInt32()), reader.ReadInt64()),
                    LoggedOpKind.SetData => new LoggedOp(kind, path, reader.ReadBytes(reader.ReadInt32()), 0),
                    LoggedOpKind.Delete => new LoggedOp(kind, path, null, 0),
                    _ => throw new InvalidDataException($"unknown op kind {(byte)kind}"),
                });
            }
            return new LoggedTxn(zxid, ops);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"Coordination log '{file}' has an undecodable record at offset {offset}: {e.Message}", e);
        }
    }

    private void StartLog(long startZxid)
    {
        log?.Dispose();
        log = new FileStream(Path.Combine(directory, "log." + Hex(startZxid)), FileMode.OpenOrCreate, FileAccess.Write,
            FileShare.Read, bufferSize: 0);
        log.Seek(0, SeekOrigin.End);
        recordsInLog = 0;
        if (options.Fsync) log.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Appends one committed transaction and flushes it to the OS (and to disk with <see cref="EmbeddedStoreOptions.Fsync"/>).
    /// On failure the partial record is cut off again and the exception propagates (the caller rolls back).
    /// </summary>
    public void Append(long zxid, IReadOnlyList<LoggedOp> ops)
    {
        if (broken || log is null)
            throw new IOException($"The coordination log in '{directory}' is unusable after an earlier write failure.");
        scratch.SetLength(0);
        scratch.Position = 0;
        using (var writer = new BinaryWriter(scratch, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(0L); // header placeholder
            writer.Write(RecordFormat);
            writer.Write(zxid);
            writer.Write(ops.Count);
            foreach (var op in ops)
            {
                writer.Write((byte)op.Kind);
                writer.Write(op.Path);
                if (op.Kind is LoggedOpKind.Create or LoggedOpKind.SetData)
                {
                    writer.Write(op.Data!.Length);
                    writer.Write(op.Data);
                }
                if (op.Kind == LoggedOpKind.Create)
                    writer.Write(op.EphemeralOwner);
            }
        }
        var record = scratch.GetBuffer().AsSpan(0, (int)scratch.Length);
        var payload = record[HeaderSize..];
        BinaryPrimitives.WriteInt32LittleEndian(record, payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], System.IO.Hashing.Crc32.HashToUInt32(payload));

        long before = log.Position;
        try
        {
            log.Write(record);
            if (options.Fsync) log.Flush(flushToDisk: true);
        }
        catch
        {
            try
            {
                log.SetLength(before);
                log.Seek(before, SeekOrigin.Begin);
            }
            catch
            {
                broken = true;
            }
            throw;
        }
        recordsInLog++;
        if (scratch.Capacity > 1 << 20)
        {
            scratch.SetLength(0);
            scratch.Capacity = 4096;
        }
    }

    /// <summary>Waits for a background snapshot (its failure only means the logs are kept), then releases the files.</summary>
    public void Dispose()
    {
        try { snapshotTask?.Wait(); } catch (AggregateException) { }
        log?.Dispose();
        log = null;
        lockFile.Dispose();
    }
}
