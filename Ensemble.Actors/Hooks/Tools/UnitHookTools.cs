using System.Globalization;

namespace Ensemble.Hooks.Tools;

/// <summary>
/// The hook tools of one machine's units: the agent's socket server, the directory of tool wrappers put first on every
/// hook's PATH, and the address the machine's units report (unit-get). <see cref="RunAsync"/> runs one hook with a
/// session of its own — valid only while that hook runs — and hands back what it wrote with relation-set, for the unit
/// agent to commit only when the hook exited 0.
/// </summary>
public sealed class UnitHookTools(HookToolServer server, string toolsDirectory, string address) : IAsyncDisposable
{
    public string Address => address;

    public string ToolsDirectory => toolsDirectory;

    /// <summary>
    /// Starts the tools of a machine whose agent keeps its files in <paramref name="machineDirectory"/>: the socket
    /// (there, or under the temporary directory when that path is too long for a Unix socket) and the wrappers, which
    /// run <paramref name="clientCommand"/> (default: the ensemble command of this installation).
    /// </summary>
    public static UnitHookTools Start(string machineDirectory, string address, IReadOnlyList<string>? clientCommand = null)
    {
        Directory.CreateDirectory(machineDirectory);
        var socket = Path.Combine(Path.GetFullPath(machineDirectory), "agent.socket");
        if (System.Text.Encoding.UTF8.GetByteCount(socket) > 100)
        {
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(socket)))[..16];
            socket = Path.Combine(Path.GetTempPath(), $"ensemble-{hash}.socket");
        }
        var tools = Path.Combine(machineDirectory, "hook-tools");
        HookTools.WriteToolsDirectory(tools, clientCommand ?? HookTools.DefaultClientCommand());
        return new UnitHookTools(HookToolServer.Start(socket), tools, address);
    }

    /// <summary>What one hook run wrote with relation-set, per relation id (a null value deletes the key).</summary>
    public sealed record Outcome(HookResult Result, IReadOnlyDictionary<int, IReadOnlyDictionary<string, string?>> Writes);

    public async Task<Outcome> RunAsync(IHookRunner runner, string hook, HookContext context, IHookToolData data, RelationHookScope? scope, CancellationToken token)
    {
        var session = new HookSession(data, scope, line => AppendToLog(context.LogPath, hook, line), hook);
        var id = server.Register(session);
        try
        {
            var environment = new Dictionary<string, string>(HookTools.HookEnvironment(server.SocketPath, id, scope), StringComparer.Ordinal);
            foreach (var (name, value) in context.Environment ?? new Dictionary<string, string>()) environment.TryAdd(name, value);
            var result = await runner.RunAsync(hook, context with { Environment = environment, ToolsDirectory = toolsDirectory }, token);
            return new Outcome(result, session.PendingSettings);
        }
        finally
        {
            server.Unregister(id);
        }
    }

    /// <summary>ensemble-log: a line in the unit's log, as the hook's own output is written.</summary>
    private static void AppendToLog(string logPath, string hook, string line)
    {
        if (ProcessHookRunner.TryLog(logPath, line)) return;
        var stamp = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        try
        {
            using var stream = new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            using var writer = new StreamWriter(stream);
            writer.WriteLine($"{stamp} [{hook}] {line}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The hook goes on; its own output meets the same disk and says so.
        }
    }

    public ValueTask DisposeAsync() => server.DisposeAsync();
}
