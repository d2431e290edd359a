using System.Runtime.InteropServices;

namespace Ensemble.Hooks.Tools;

/// <summary>
/// The hook tools as executables: one small shell wrapper per tool, put on a hook's PATH, each handing its
/// arguments to `ensemble hook-tool`, which asks the unit agent over its socket.
/// </summary>
public static class HookTools
{
    /// <summary>Every hook tool, in the order the docs list them.</summary>
    public static readonly IReadOnlyList<string> Names =
        ["relation-get", "relation-set", "relation-list", "relation-ids", "config-get", "unit-get", "ensemble-log"];

    /// <summary>The environment a hook's tools find the unit agent by (set through <see cref="HookContext.Environment"/>).</summary>
    public const string SocketVariable = "ENSEMBLE_AGENT_SOCKET";

    public const string TokenVariable = "ENSEMBLE_HOOK_TOKEN";
    public const string RelationVariable = "ENSEMBLE_RELATION";
    public const string RelationIdVariable = "ENSEMBLE_RELATION_ID";
    public const string RemoteUnitVariable = "ENSEMBLE_REMOTE_UNIT";

    /// <summary>The CLI verb the wrappers call; hidden from `ensemble --help`.</summary>
    public const string ClientVerb = "hook-tool";

    /// <summary>
    /// The variables a hook needs for its tools (<see cref="HookContext.Environment"/>): the socket, the run's
    /// token and, in a relation hook, its relation as `NAME`, `NAME:N` and the remote unit (unset when none).
    /// </summary>
    public static IReadOnlyDictionary<string, string> HookEnvironment(string socketPath, string token, RelationHookScope? scope)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { [SocketVariable] = socketPath, [TokenVariable] = token };
        if (scope is null) return environment;
        environment[RelationVariable] = scope.RelationName;
        environment[RelationIdVariable] = $"{scope.RelationName}:{scope.RelationId}";
        if (scope.RemoteUnit is { } remote) environment[RemoteUnitVariable] = remote;
        return environment;
    }

    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// Writes one `#!/bin/sh` wrapper per tool into <paramref name="directory"/> (mode 0755), each running
    /// <paramref name="clientCommand"/> (program and leading arguments, e.g. dotnet and ensemble.dll)
    /// with `hook-tool TOOL "$@"`. Rewrites wrappers already there, so a moved installation is picked up.
    /// </summary>
    public static void WriteToolsDirectory(string directory, IReadOnlyList<string> clientCommand)
    {
        if (clientCommand.Count == 0) throw new ArgumentException("the hook tools need a client command, such as the path of the ensemble executable.", nameof(clientCommand));
        Directory.CreateDirectory(directory);
        var client = string.Join(' ', clientCommand.Select(ShellQuote));
        foreach (var tool in Names)
        {
            var path = Path.Combine(directory, tool);
            // Written beside and renamed over, so a hook running meanwhile never executes half a wrapper.
            var partial = path + ".partial";
            File.WriteAllText(partial, $"#!/bin/sh\nexec {client} {ClientVerb} {tool} \"$@\"\n");
            File.SetUnixFileMode(partial, Executable);
            File.Move(partial, path, overwrite: true);
        }
    }

    /// <summary>Writes the wrappers for a single client executable (the `ensemble` launcher).</summary>
    public static void WriteToolsDirectory(string directory, string clientCommand) => WriteToolsDirectory(directory, [clientCommand]);

    /// <summary>
    /// The `ensemble` command of this installation: this process when it is the ensemble launcher itself,
    /// else the dotnet host with <paramref name="ensembleDll"/> or the ensemble.dll beside this program (where
    /// the tool package puts the node program, and where a test project's build copies it).
    /// </summary>
    public static IReadOnlyList<string> DefaultClientCommand(string? ensembleDll = null)
    {
        if (ensembleDll is null && Environment.ProcessPath is { } self && Path.GetFileName(self) == "ensemble") return [self];
        var dll = ensembleDll ?? Path.Combine(AppContext.BaseDirectory, "ensemble.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"ensemble.dll is not at {dll}, so hooks would have no hook tools; install the tool again or give the client command explicitly.", dll);
        return [DotnetHost(), Path.GetFullPath(dll)];
    }

    /// <summary>
    /// The dotnet host running this program (as Ensemble.Cli's NodeProcess finds it): a process started by a
    /// launcher is not `dotnet`, and `dotnet` need not be on a hook's PATH, so it comes from the runtime's directory.
    /// </summary>
    private static string DotnetHost()
    {
        if (Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet") return host;
        // <root>/shared/Microsoft.NETCore.App/<version>/
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var dotnet = Path.Combine(root, "dotnet");
        return File.Exists(dotnet) ? dotnet : "dotnet";
    }

    private static string ShellQuote(string word) => "'" + word.Replace("'", "'\\''") + "'";
}
