using System.Buffers.Binary;
using System.Net.Sockets;

namespace Ensemble.ZooKeeper;

internal static class OpCodes
{
    public const int Create = 1, Delete = 2, Exists = 3, GetData = 4, SetData = 5, GetAcl = 6, SetAcl = 7,
        GetChildren = 8, Sync = 9, Ping = 11, GetChildren2 = 12, Check = 13, Multi = 14, Create2 = 15,
        Auth = 100, SetWatches = 101, CloseSession = -11, Error = -1;
}

internal static class Xids
{
    public const int Notification = -1, Ping = -2, Auth = -4, SetWatches = -8;
}

internal enum WatchKind { Data, Exist, Child }

internal delegate T ReplyParser<T>(int err, ref JuteReader reader);

/// <summary>A framed request waiting to be written and (for normal requests) answered in order.</summary>
internal abstract class Packet(byte[] frame, int opCode, string? path)
{
    public byte[] Frame { get; } = frame;
    public int OpCode { get; } = opCode;
    public string? Path { get; } = path;
    public int Xid { get; set; }
    public WatchKind? WatchKind { get; init; }
    public Action<WatchedEvent>? Watcher { get; init; }

    /// <summary>True for requests answered in order with their own xid (not ping/auth/setWatches).</summary>
    public bool IsOrdered => OpCode is not (OpCodes.Ping or OpCodes.Auth or OpCodes.SetWatches);

    public abstract void Complete(int err, ref JuteReader reader);
    public abstract void Fail(Exception error);
}

internal sealed class Packet<T>(byte[] frame, int opCode, string? path, ReplyParser<T> parser) : Packet(frame, opCode, path)
{
    private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _tcs.Task;

    public override void Complete(int err, ref JuteReader reader)
    {
        T value;
        try { value = parser(err, ref reader); }
        catch (Exception e) { _tcs.TrySetException(e); return; }
        _tcs.TrySetResult(value);
    }

    public override void Fail(Exception error) => _tcs.TrySetException(error);
}

/// <summary>Internal packets (ping, handshake auth, setWatches) nobody awaits.</summary>
internal sealed class ControlPacket(byte[] frame, int opCode) : Packet(frame, opCode, null)
{
    public override void Complete(int err, ref JuteReader reader) { }
    public override void Fail(Exception error) { }
}

/// <summary>Reads length-prefixed frames from a stream into a reusable buffer.</summary>
internal sealed class FrameReader(Stream stream)
{
    public const int MaxFrame = 0xfffff + 1024;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;

    public long LastReceive { get; private set; } = Environment.TickCount64;

    private async ValueTask FillAsync(int needed, CancellationToken ct)
    {
        while (_end - _start < needed)
        {
            if (_buffer.Length - _start < needed)
            {
                if (needed > _buffer.Length) Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException("The server closed the connection.");
            _end += n;
            LastReceive = Environment.TickCount64;
        }
    }

    /// <summary>Reads the next frame; the returned segment is valid until the next call.</summary>
    public async ValueTask<ArraySegment<byte>> ReadFrameAsync(CancellationToken ct)
    {
        await FillAsync(4, ct).ConfigureAwait(false);
        var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start));
        if (length < 0 || length > MaxFrame) throw new IOException($"Invalid frame length {length}.");
        await FillAsync(4 + length, ct).ConfigureAwait(false);
        var segment = new ArraySegment<byte>(_buffer, _start + 4, length);
        _start += 4 + length;
        if (_start == _end) _start = _end = 0;
        return segment;
    }
}

/// <summary>One TCP connection to one server, with its queue of requests awaiting replies.</summary>
internal sealed class Connection(Socket socket, NetworkStream stream, FrameReader reader, string server, int timeoutMs)
{
    private readonly Queue<Packet> _pending = new();
    private readonly Queue<Packet> _authPending = new();
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource<Exception> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _closed;

    public NetworkStream Stream { get; } = stream;
    public FrameReader Reader { get; } = reader;
    public string Server { get; } = server;
    public int TimeoutMs { get; } = timeoutMs;
    public CancellationToken Token => _cts.Token;
    public Task<Exception> Completion => _completion.Task;
    public long LastSend;

    /// <summary>Queues a packet as written on this connection; false when the connection is closed.</summary>
    public bool Admit(Packet packet, ref int xidCounter)
    {
        lock (_pending)
        {
            if (_closed) return false;
            if (packet.IsOrdered)
            {
                packet.Xid = Interlocked.Increment(ref xidCounter);
                BinaryPrimitives.WriteInt32BigEndian(packet.Frame.AsSpan(4), packet.Xid);
                _pending.Enqueue(packet);
            }
            else if (packet.OpCode == OpCodes.Auth)
            {
                _authPending.Enqueue(packet);
            }
            return true;
        }
    }

    public Packet? NextPending()
    {
        lock (_pending) return _pending.TryDequeue(out var p) ? p : null;
    }

    public Packet? NextAuth()
    {
        lock (_pending) return _authPending.TryDequeue(out var p) ? p : null;
    }

    public void Close(Exception reason)
    {
        List<Packet> failed;
        lock (_pending)
        {
            if (_closed) return;
            _closed = true;
            failed = [.. _pending, .. _authPending];
            _pending.Clear();
            _authPending.Clear();
        }
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
        try { socket.Dispose(); } catch { /* already gone */ }
        foreach (var p in failed)
            p.Fail(new ConnectionLossException(p.Path, $"Connection to {Server} lost: {reason.Message}", reason));
        _completion.TrySetResult(reason);
    }
}
