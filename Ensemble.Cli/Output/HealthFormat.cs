using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ensemble.Health;
using Spectre.Console;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Cli.Output;

/// <summary>
/// How `ensemble health` prints: a table of nodes for people; for programs the document of docs/cli.md (each node as
/// the health file holds it), as JSON or YAML.
/// </summary>
public static class HealthFormat
{
    public static JsonObject Document(EnvironmentHealth health)
    {
        var nodes = new JsonArray();
        foreach (var node in health.Nodes) nodes.Add(HealthDocument.Of(node));
        return new JsonObject { ["environment"] = health.Environment, ["healthy"] = health.Healthy, ["nodes"] = nodes };
    }

    public static string Json(JsonObject document) => document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    public static void Table(IEnumerable<NodeHealth> nodes, IAnsiConsole console)
    {
        var table = Terminal.Table("NODE", "ROLES", "MACHINE", "MEMBER", "STORE", "JOURNAL", "UPTIME", "HEALTH");
        foreach (var node in nodes)
        {
            var store = node.Stores.Count == 0 ? "" : string.Join(", ", node.Stores.Select(s => $"{s.Session} {s.State}"));
            var journal = node.Journal is null ? "" : node.Journal.Reachable ? $"ok ({node.Journal.Milliseconds:0} ms)" : "unreachable";
            var verdict = node.Healthy ? "healthy" : "unhealthy: " + string.Join("; ", node.Reasons);
            table.AddRow(Cell(node.Address), Cell(string.Join(",", node.Roles)), Cell(node.Machine ?? ""), Cell(node.MemberStatus),
                Cell(store), Cell(journal), Cell(Uptime(node.Uptime)), Cell(verdict));
        }
        console.Write(table);
    }

    /// <summary>An uptime as people read it: 42s, 5m03s, 3h07m, 2d04h.</summary>
    public static string Uptime(TimeSpan uptime) => uptime switch
    {
        { TotalDays: >= 1 } => $"{(int)uptime.TotalDays}d{uptime.Hours:00}h",
        { TotalHours: >= 1 } => $"{(int)uptime.TotalHours}h{uptime.Minutes:00}m",
        { TotalMinutes: >= 1 } => $"{(int)uptime.TotalMinutes}m{uptime.Seconds:00}s",
        _ => string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, (int)uptime.TotalSeconds)}s"),
    };

    private static Text Cell(string text) => new(text);
}
