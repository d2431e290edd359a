using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Ensemble.Hooks.Tools;

/// <summary>
/// The unit agent's end of the hook tools: a Unix socket (mode 0600) that answers each tool call from the
/// <see cref="HookSession"/> its token names. A token is valid from <see cref="Register"/> until
/// <see cref="Unregister"/>, i.e. while its hook runs.
/// </summary>
public sealed class HookToolServer : IAsyncDisposable
{
    // sun_path is 108 bytes on Linux, with the terminating NUL.
    private const int MaxSocketPathBytes = 107;

    /// <summary>A connection that sends nothing is dropped after this; a real tool sends its request at once.</summary>
    private static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(10);

    private readonly Socket _listener;
    private readonly ConcurrentDictionary<string, HookSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;

    public string SocketPath { get; }

    private HookToolServer(string socketPath, Socket listener)
    {
        SocketPath = socketPath;
        _listener = listener;
        _accepting = AcceptAsync();
    }

    /// <summary>
    /// Listens on <paramref name="socketPath"/>, replacing a socket file an agent that died left behind; refuses
    /// when another agent still answers there.
    /// </summary>
    public static HookToolServer Start(string socketPath)
    {
        socketPath = Path.GetFullPath(socketPath);
        if (Encoding.UTF8.GetByteCount(socketPath) > MaxSocketPathBytes)
            throw new ArgumentException($"the hook tool socket path {socketPath} is longer than the {MaxSocketPathBytes} bytes a Unix socket allows; give the agent a shorter data directory.", nameof(socketPath));
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        if (File.Exists(socketPath))
        {
            if (Answers(endpoint))
                throw new IOException($"another unit agent is listening on {socketPath}; stop it, or give this agent a data directory of its own.");
            File.Delete(socketPath);
        }
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(endpoint);
            // Before Listen: until then a connect is refused, so no one gets in through the umask's mode.
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(128);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        return new HookToolServer(socketPath, listener);
    }

    /// <summary>Makes <paramref name="session"/> reachable by its hook's tools; returns the token to give the hook.</summary>
    public string Register(HookSession session)
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        _sessions[token] = session;
        return token;
    }

    /// <summary>Ends a hook's tools: calls with this token are refused from now on.</summary>
    public void Unregister(string token) => _sessions.TryRemove(token, out _);

    private HookToolResponse Answer(HookToolRequest request)
    {
        var tool = request.Tool ?? "";
        if (request.Token is null || !_sessions.TryGetValue(request.Token, out var session))
            return new HookToolResponse(HookToolResult.Refused, "", $"hook tools work only while their hook runs; {tool} was called outside one.\n");
        if (request.Args is null || request.Args.Any(a => a is null))
            return new HookToolResponse(HookToolResult.Usage, "", $"{tool}: the request's arguments are missing; call hook tools through ensemble hook-tool.\n");
        try
        {
            var result = session.Invoke(tool, request.Args!);
            return new HookToolResponse(result.ExitCode, result.Stdout, result.Stderr);
        }
        catch (Exception ex)
        {
            // The agent's data failed (a store it reads, say): the hook sees a refusal, the agent keeps serving.
            return new HookToolResponse(HookToolResult.Refused, "", $"{tool}: the unit agent could not answer ({ex.GetBaseException().Message.TrimEnd('.')}); try again or see the agent's log.\n");
        }
    }

    private static bool Answers(UnixDomainSocketEndPoint endpoint)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(endpoint);
            return true;
        }
        catch (SocketException) { return false; }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try { connection = await _listener.AcceptAsync(_stopping.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) when (_stopping.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            var handling = ServeAsync(connection);
            _connections.TryAdd(handling, 0);
            _ = handling.ContinueWith(t => _connections.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        await Task.Yield();
        using var _ = connection;
        await using var stream = new NetworkStream(connection, ownsSocket: false);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(RequestDeadline);
        try
        {
            var frame = await HookToolWire.ReadFrameAsync(stream, HookToolWire.MaxRequestBytes, deadline.Token);
            if (frame is null) return;
            HookToolResponse response;
            if (frame.Value.Payload is not { } payload)
                response = new HookToolResponse(HookToolResult.Refused, "", $"a hook tool request of {frame.Value.Length} bytes is over the {HookToolWire.MaxRequestBytes >> 20} MiB limit; pass large values in a file.\n");
            else if (HookToolWire.DecodeRequest(payload) is { } request)
                response = Answer(request);
            else
                response = new HookToolResponse(HookToolResult.Refused, "", "the hook tool request is not valid JSON with a token and a tool; call hook tools through ensemble hook-tool.\n");
            await HookToolWire.WriteFrameAsync(stream, HookToolWire.Encode(response), deadline.Token);
        }
        // A client that hung up or dawdled costs it its answer, nothing more.
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        _listener.Dispose();
        await _accepting;
        await Task.WhenAll(_connections.Keys);
        _sessions.Clear();
        try { File.Delete(SocketPath); } catch (IOException) { }
        _stopping.Dispose();
    }
}
