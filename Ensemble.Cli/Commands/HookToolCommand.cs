using System.Net.Sockets;
using System.Text;
using Ensemble.Hooks.Tools;

namespace Ensemble.Cli.Commands;

/// <summary>
/// `ensemble hook-tool TOOL ARGS...`, the hidden verb the hook tools' wrappers run: one call to the unit
/// agent over its socket, the answer copied to stdout and stderr and its code returned. It runs on every
/// tool call of every hook, so it loads no configuration and starts no actor system.
/// </summary>
public static class HookToolCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
        {
            Console.Error.WriteLine($"ensemble: hook-tool needs the name of a hook tool ({string.Join(", ", HookTools.Names)}); hooks call it through the tools on their PATH.");
            return ExitCodes.Usage;
        }
        var tool = args[0];
        var socket = Environment.GetEnvironmentVariable(HookTools.SocketVariable);
        var token = Environment.GetEnvironmentVariable(HookTools.TokenVariable);
        var missing = string.IsNullOrEmpty(socket) ? HookTools.SocketVariable : string.IsNullOrEmpty(token) ? HookTools.TokenVariable : null;
        if (missing is not null)
        {
            Console.Error.WriteLine($"{tool} is a hook tool: run it from a hook ({missing} is not set).");
            return ExitCodes.Failed;
        }
        HookToolResponse response;
        try
        {
            response = HookToolWire.Call(socket!, new HookToolRequest(token, tool, args.Skip(1).ToList()));
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            Console.Error.WriteLine($"{tool}: the unit agent does not answer on {socket} ({ex.Message.TrimEnd('.')}); hook tools work only while their hook runs.");
            return ExitCodes.Failed;
        }
        Write(Console.OpenStandardOutput(), response.Stdout);
        Write(Console.OpenStandardError(), response.Stderr);
        return response.Exit;
    }

    private static void Write(Stream stream, string? text)
    {
        if (string.IsNullOrEmpty(text)) return;
        // Raw bytes: the tool's output is the agent's, not reformatted by the console.
        try { stream.Write(Encoding.UTF8.GetBytes(text)); stream.Flush(); }
        catch (IOException) { } // a closed pipe (`relation-get | head -1`) is the reader's choice
    }
}
