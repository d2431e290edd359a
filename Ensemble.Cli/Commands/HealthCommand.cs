using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Ensemble.Cli.Output;
using Ensemble.Health;
using static Ensemble.Cli.Commands.CommandSupport;

namespace Ensemble.Cli.Commands;

/// <summary>health [--format table|json|yaml] [--file PATH [--max-age SECONDS]].</summary>
public static class HealthCommand
{
    /// <summary>How long the controller may take: its own deadline per node, and then some.</summary>
    private static readonly TimeSpan Wait = EnvironmentHealthActor.DefaultDeadline + ControllerClient.DefaultTimeout;

    public static Command Build()
    {
        var format = FormatOption();
        var file = new Option<string?>("--file")
        {
            Description = "Read a node's health file (e.g. <data-dir>/health.json) instead of asking the environment; no controller needed.",
            HelpName = "PATH",
        };
        var maxAge = Count("--max-age", "With --file: a check older than this many seconds counts as unhealthy (default 30).", 1);
        var command = new Command("health",
            "Ask every node of the environment (through its controller) whether it is healthy: its cluster member is Up, its " +
            "coordination store sessions are connected, a controller's journal answers. Exits 0 when every node is healthy, " +
            "1 when one is not (or did not answer), 7 when the controller does not answer.")
        {
            format, file, maxAge,
        };
        command.SetAction(parsed =>
        {
            var how = parsed.GetValue(format)!;
            if (parsed.GetValue(file) is { } path)
                return Task.FromResult(ReadFile(path, TimeSpan.FromSeconds(parsed.GetValue(maxAge) ?? 30), how));
            if (parsed.GetValue(maxAge) is not null)
                throw new CliException(ExitCodes.Usage, "--max-age goes with --file; without it every node is asked directly.");
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new HealthRequests.GetEnvironmentHealth(EnvironmentHealthActor.DefaultDeadline.TotalSeconds), Wait, EnvironmentHealthActor.Path);
                if (reply is not HealthReplies.EnvironmentHealth health) throw ControllerClient.Rejected(reply);
                switch (how)
                {
                    case "json": Console.Write(HealthFormat.Json(HealthFormat.Document(health))); break;
                    case "yaml": Console.Write(StatusFormat.Yaml(HealthFormat.Document(health))); break;
                    default: HealthFormat.Table(health.Nodes, Terminal.Stdout); break;
                }
                var sick = health.Nodes.Where(n => !n.Healthy).ToList();
                if (health.Nodes.Count == 0)
                {
                    Console.Error.WriteLine($"ensemble: environment '{client.Environment.Name}' named no nodes; see {ControllerClient.LogOf(client.Environment)}.");
                    return ExitCodes.Failed;
                }
                if (sick.Count == 0) return ExitCodes.Ok;
                Console.Error.WriteLine(
                    $"ensemble: {sick.Count} of {health.Nodes.Count} {(health.Nodes.Count == 1 ? "node" : "nodes")} of environment '{client.Environment.Name}' " +
                    $"{(sick.Count == 1 ? "is" : "are")} unhealthy: {string.Join("; ", sick.Select(n => $"{n.Address} ({string.Join(", ", n.Reasons.Select(r => r.TrimEnd('.')))})"))}.");
                return ExitCodes.Failed;
            });
        });
        return command;
    }

    /// <summary>A node's health file: healthy and written within <paramref name="maxAge"/> is 0, anything else 1; no such file 3.</summary>
    private static int ReadFile(string path, TimeSpan maxAge, string format)
    {
        var full = Path.GetFullPath(path);
        var text = ReadNamedFile(full, "health file", "a node writes <data-dir>/health.json while it runs (ensemble.health.file)", "check its permissions");
        if (HealthDocument.Read(text) is not { } read)
            throw new CliException(ExitCodes.NotFound, $"{full} is not a health file (no timestamp and healthy fields); name the health.json a node writes.");
        var age = DateTimeOffset.UtcNow - read.CheckedAt;
        var fresh = HealthJudge.IsFresh(read.CheckedAt, DateTimeOffset.UtcNow, maxAge);
        var document = (JsonObject)read.Document.DeepClone();
        document["age-seconds"] = Math.Max(0, (long)age.TotalSeconds);
        document["fresh"] = fresh;
        var ago = string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, age.TotalSeconds):0} s ago");
        switch (format)
        {
            case "json": Console.Write(HealthFormat.Json(document)); break;
            case "yaml": Console.Write(StatusFormat.Yaml(document)); break;
            default:
                Console.WriteLine(read.Healthy ? $"healthy (checked {ago})" : $"unhealthy (checked {ago}): {string.Join("; ", read.Reasons)}");
                break;
        }
        if (!fresh)
        {
            Console.Error.WriteLine($"ensemble: health file {full} was last written {ago}, more than {maxAge.TotalSeconds:0} s; its node is stopped or stuck.");
            return ExitCodes.Failed;
        }
        if (!read.Healthy)
        {
            Console.Error.WriteLine($"ensemble: the node of {full} is unhealthy: {string.Join("; ", read.Reasons.Select(r => r.TrimEnd('.')))}.");
            return ExitCodes.Failed;
        }
        return ExitCodes.Ok;
    }
}
