using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Ensemble.Hooks.Tools;
using Ensemble.Tests.Units;
using Xunit;

namespace Ensemble.Tests.Hooks.Tools;

/// <summary>The unit agent's hook tool socket, spoken to in-process.</summary>
public sealed class HookToolServerTests : IDisposable
{
    private readonly ScratchDirectory scratch = new("ensemble-hooktools");
    private readonly string socketPath;

    public HookToolServerTests() => socketPath = scratch.Combine("agent.socket");

    public void Dispose() => scratch.Dispose();

    private static HookSession Session(List<string>? log = null) =>
        new(new InMemoryHookToolData("web/0").Relation(3, "db", "mysql", "mysql/0").Committed(3, "mysql/0", ("host", "10.0.0.9")),
            new RelationHookScope(3, "db", "mysql/0"), (log ?? []).Add, "db-relation-changed");

    [Fact]
    public async Task A_registered_hook_gets_its_answers_over_a_socket_only_its_user_can_open()
    {
        await using var server = HookToolServer.Start(socketPath);
        var session = Session();
        var token = server.Register(session);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socketPath));
        Assert.Matches("^[0-9a-f]{64}$", token);
        Assert.NotEqual(token, server.Register(Session()));
        Assert.Equal(new HookToolResponse(0, "10.0.0.9\n", ""), HookToolWire.Call(socketPath, new HookToolRequest(token, "relation-get", ["host"])));
        Assert.Equal(0, HookToolWire.Call(socketPath, new HookToolRequest(token, "relation-set", ["port=3306"])).Exit);
        Assert.Equal("3306", session.PendingSettings[3]["port"]);
    }

    [Fact]
    public async Task Tools_a_hook_runs_at_once_all_get_answers_and_every_write_is_kept()
    {
        await using var server = HookToolServer.Start(socketPath);
        var session = Session();
        var token = server.Register(session);

        var calls = Enumerable.Range(0, 40).Select(i => CallAsync(new HookToolRequest(token, "relation-set", [$"key{i}=value{i}"])));
        var responses = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(responses, r => Assert.Equal(new HookToolResponse(0, "", ""), r));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"key{i}").Order(StringComparer.Ordinal).Select(k => $"{k}: {k.Replace("key", "value")}"),
            HookToolWire.Call(socketPath, new HookToolRequest(token, "relation-get", ["-", "web/0"])).Stdout!.TrimEnd('\n').Split('\n'));
    }

    /// <summary>A call like the client's, but without holding a thread while it waits, so forty fit in the test's pool.</summary>
    private async Task<HookToolResponse> CallAsync(HookToolRequest request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await using var stream = new NetworkStream(socket);
        await HookToolWire.WriteFrameAsync(stream, HookToolWire.Encode(request), CancellationToken.None);
        var frame = await HookToolWire.ReadFrameAsync(stream, HookToolWire.MaxResponseBytes, CancellationToken.None);
        return HookToolWire.DecodeResponse(frame!.Value.Payload!)!;
    }

    [Fact]
    public async Task Calls_with_an_unknown_or_unregistered_token_are_refused()
    {
        await using var server = HookToolServer.Start(socketPath);
        var session = Session();
        var token = server.Register(session);
        server.Unregister(token);

        foreach (var stranger in new[] { token, "0123", "" })
        {
            var response = HookToolWire.Call(socketPath, new HookToolRequest(stranger, "relation-set", ["port=1"]));
            Assert.Equal(1, response.Exit);
            Assert.Equal("", response.Stdout);
            Assert.Equal("hook tools work only while their hook runs; relation-set was called outside one.\n", response.Stderr);
        }
        Assert.Empty(session.PendingSettings);
    }

    private async Task<(int Exit, string Stderr)> SendRawAsync(byte[] header, byte[] body)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(header);
        await stream.WriteAsync(body);
        var frame = await HookToolWire.ReadFrameAsync(stream, HookToolWire.MaxResponseBytes, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var response = HookToolWire.DecodeResponse(frame!.Value.Payload!)!;
        return (response.Exit, response.Stderr!);
    }

    private static byte[] Header(uint length)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, length);
        return header;
    }

    [Fact]
    public async Task Oversized_and_malformed_requests_are_refused_and_the_server_keeps_serving()
    {
        await using var server = HookToolServer.Start(socketPath);
        var token = server.Register(Session());

        var (exit, stderr) = await SendRawAsync(Header(2 << 20), []);
        Assert.Equal(1, exit);
        Assert.Contains("request of 2097152 bytes is over the 1 MiB limit", stderr);

        var notJson = Encoding.UTF8.GetBytes("{\"token\": ");
        (exit, stderr) = await SendRawAsync(Header((uint)notJson.Length), notJson);
        Assert.Equal(1, exit);
        Assert.Contains("not valid JSON with a token and a tool", stderr);

        // A type name is data like any other: nothing is instantiated from it.
        var typed = Encoding.UTF8.GetBytes($$"""{"$type":"System.IO.FileInfo, System.IO","token":"{{token}}","tool":"unit-get","args":["private-address"]}""");
        (exit, _) = await SendRawAsync(Header((uint)typed.Length), typed);
        Assert.Equal(0, exit);

        Assert.Equal("10.0.0.9\n", HookToolWire.Call(socketPath, new HookToolRequest(token, "relation-get", ["host"])).Stdout);
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_but_a_live_agents_socket_is_not()
    {
        await using (var first = HookToolServer.Start(socketPath))
        {
            var refused = Assert.Throws<IOException>(() => HookToolServer.Start(socketPath));
            Assert.Contains($"another unit agent is listening on {socketPath}", refused.Message);
        }
        Assert.False(File.Exists(socketPath), "a stopped server leaves its socket file behind");

        // An agent killed with -9 leaves its socket file. .NET unlinks what a socket bound when it is closed,
        // so the file is moved away from under it first: it stays, with no one behind it.
        var bound = scratch.Combine("dead.socket");
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            dead.Bind(new UnixDomainSocketEndPoint(bound));
            dead.Listen();
            File.Move(bound, socketPath);
        }
        Assert.True(File.Exists(socketPath));

        await using var server = HookToolServer.Start(socketPath);
        var token = server.Register(Session());
        Assert.Equal(0, HookToolWire.Call(socketPath, new HookToolRequest(token, "unit-get", ["public-address"])).Exit);
    }

    [Fact]
    public void A_socket_path_too_long_for_a_unix_socket_is_refused_with_the_fix()
    {
        var tooLong = scratch.Combine(new string('d', 120), "agent.socket");
        var refused = Assert.Throws<ArgumentException>(() => HookToolServer.Start(tooLong));
        Assert.Contains("give the agent a shorter data directory", refused.Message);
    }
}
