using Ensemble.Formulas;

namespace Ensemble.TestKit;

/// <summary>
/// A formula source that fails, corrupts or cuts off a chosen number of downloads, then behaves (fault injection).
/// </summary>
public sealed class FaultyFormulaStorage(IFormulaSource inner) : IFormulaSource
{
    private int _failuresLeft;
    private int _corruptionsLeft;
    private int _interruptionsLeft;
    private long _interruptAfter;
    private int _gets;

    /// <summary>The next <paramref name="count"/> downloads fail with an I/O error.</summary>
    public FaultyFormulaStorage FailNext(int count) { Interlocked.Exchange(ref _failuresLeft, count); return this; }

    /// <summary>The next <paramref name="count"/> downloads return bytes with one bit flipped.</summary>
    public FaultyFormulaStorage CorruptNext(int count) { Interlocked.Exchange(ref _corruptionsLeft, count); return this; }

    /// <summary>The next <paramref name="count"/> downloads fail with an I/O error after <paramref name="bytes"/> bytes (a dropped connection).</summary>
    public FaultyFormulaStorage InterruptNext(int count, long bytes)
    {
        Interlocked.Exchange(ref _interruptAfter, bytes);
        Interlocked.Exchange(ref _interruptionsLeft, count);
        return this;
    }

    /// <summary>How many downloads were begun.</summary>
    public int Gets => Volatile.Read(ref _gets);

    /// <summary>The offsets downloads began at, in order (0 for a fresh one, more for a resumed one).</summary>
    public IReadOnlyList<long> Offsets { get { lock (_offsets) return [.. _offsets]; } }

    private readonly List<long> _offsets = [];

    public string Location => inner.Location;

    public async Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _gets);
        lock (_offsets) _offsets.Add(offset);
        if (Interlocked.Decrement(ref _failuresLeft) >= 0) throw new IOException("injected fault: formula storage unreachable");
        var stream = await inner.OpenAsync(key, offset, ct);
        if (Interlocked.Decrement(ref _corruptionsLeft) >= 0) stream = new Faulted(stream, flipAt: Math.Max(0, LengthOf(stream) / 2), failAfter: -1);
        else if (Interlocked.Decrement(ref _interruptionsLeft) >= 0) stream = new Faulted(stream, flipAt: -1, failAfter: Interlocked.Read(ref _interruptAfter));
        return stream;
    }

    private static long LengthOf(Stream stream) => stream.CanSeek ? stream.Length - stream.Position : 1024;

    /// <summary>Passes the bytes on, flipping a bit at one position or failing after some bytes.</summary>
    private sealed class Faulted(Stream inner, long flipAt, long failAfter) : Stream
    {
        private long _position;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (failAfter >= 0 && _position >= failAfter) throw new IOException("injected fault: the connection to formula storage dropped");
            if (failAfter >= 0) buffer = buffer[..(int)Math.Min(buffer.Length, failAfter - _position)];
            var read = await inner.ReadAsync(buffer, cancellationToken);
            if (flipAt >= _position && flipAt < _position + read) buffer.Span[(int)(flipAt - _position)] ^= 0x40;
            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
