using Akka.Actor;
using static Ensemble.Formulas.Transfer.BundleRequests;
using static Ensemble.Formulas.Transfer.BundleReplies;

namespace Ensemble.Formulas.Transfer;

/// <summary>
/// An agent's formula source when the controller's storage is on another node: the bundle server of a controller
/// announced in the store (<see cref="ControllerDirectory"/>), read in chunks of <see cref="BundleTransfer.ChunkSize"/>
/// bytes with <see cref="BundleTransfer.Window"/> requests in flight. Every failure to reach or read it is an
/// <see cref="IOException"/> (a missing bundle a <see cref="FileNotFoundException"/>), which the unit's download step
/// retries with its backoff; the machine's cache verifies what arrives.
/// </summary>
public sealed class ControllerFormulaSource(ActorSystem system, ControllerDirectory controllers, TimeSpan? chunkTimeout = null) : IFormulaSource
{
    private readonly TimeSpan _timeout = chunkTimeout ?? TimeSpan.FromSeconds(15);
    private volatile string _lastController = "the controller";

    /// <summary>The controller read from last, for the agent's log ("fetched … from controller 10.0.0.1:4053").</summary>
    public string Location => _lastController;

    public async Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default)
    {
        var servers = await controllers.ListAsync();
        if (servers.Count == 0)
            throw new IOException($"no controller has announced a bundle server ({controllers.ControllersPath} is empty); start the controller node, then the download is retried");
        string? notStored = null;
        foreach (var server in servers)
        {
            switch (await AskAsync(server, key, offset, ct))
            {
                case BundleChunk first:
                    _lastController = $"controller {server.Node}";
                    return new ChunkStream(this, server, key, offset, first, ct);
                case BundleUnavailable { NotStored: true } missing:
                    notStored = missing.Reason;
                    continue;
                case BundleUnavailable unavailable:
                    throw new IOException(unavailable.Reason);
            }
        }
        throw new FileNotFoundException(notStored ?? $"formula bundle {key} is stored by no controller");
    }

    private async Task<object> AskAsync(ControllerPresence server, string key, long offset, CancellationToken ct)
    {
        try
        {
            var reply = await system.ActorSelection(server.Bundles).Ask<object>(new GetBundleChunk(key, offset, BundleTransfer.ChunkSize), _timeout, ct);
            return reply switch
            {
                BundleChunk chunk when chunk.Sha256 == key && chunk.Offset == offset
                    && chunk.Data.Length <= BundleTransfer.ChunkSize && offset + chunk.Data.Length <= chunk.Size => chunk,
                BundleChunk => throw new IOException($"the controller {server.Node} answered a request for bytes at {offset} of {key} with other bytes"),
                BundleUnavailable unavailable => unavailable,
                _ => throw new IOException($"the controller {server.Node} answered a request for bytes of {key} with {reply.GetType().Name}"),
            };
        }
        catch (AskTimeoutException)
        {
            throw new IOException($"the controller {server.Node} did not answer a request for bytes at {offset} of {key} within {_timeout.TotalSeconds:0} s");
        }
    }

    /// <summary>The bundle's bytes as they arrive, a few chunks requested ahead.</summary>
    private sealed class ChunkStream : Stream
    {
        private readonly ControllerFormulaSource _source;
        private readonly ControllerPresence _server;
        private readonly string _key;
        private readonly long _size;
        private readonly CancellationToken _ct;
        private readonly Queue<Task<object>> _ahead = new();
        private long _nextRequest;
        private byte[] _current;
        private int _used;
        private long _position;

        public ChunkStream(ControllerFormulaSource source, ControllerPresence server, string key, long offset, BundleChunk first, CancellationToken ct)
        {
            _source = source;
            _server = server;
            _key = key;
            _size = first.Size;
            _ct = ct;
            _current = first.Data;
            _position = offset;
            _nextRequest = offset + first.Data.Length;
            if (first.Data.Length == 0 && offset < _size)
                throw new IOException($"the controller {server.Node} sent no bytes at {offset} of {key}, which has {_size}");
            Fill();
        }

        private void Fill()
        {
            while (_ahead.Count < BundleTransfer.Window - 1 && _nextRequest < _size)
            {
                _ahead.Enqueue(_source.AskAsync(_server, _key, _nextRequest, _ct));
                _nextRequest += BundleTransfer.ChunkSize;
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_used == _current.Length)
            {
                if (_position >= _size) return 0;
                if (_ahead.Count == 0) throw new IOException($"the controller {_server.Node} sent fewer bytes of {_key} than it announced");
                var reply = await _ahead.Dequeue();
                Fill();
                if (reply is not BundleChunk chunk)
                    throw new IOException(((BundleUnavailable)reply).Reason);
                if (chunk.Offset != _position || chunk.Size != _size || chunk.Data.Length == 0)
                    throw new IOException($"the controller {_server.Node} sent bytes out of order for {_key} (at {chunk.Offset}, wanted {_position})");
                _current = chunk.Data;
                _used = 0;
            }
            var n = Math.Min(buffer.Length, _current.Length - _used);
            _current.AsMemory(_used, n).CopyTo(buffer);
            _used += n;
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _size;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
