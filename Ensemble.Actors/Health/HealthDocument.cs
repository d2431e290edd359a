using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// The one JSON shape of a node's health, as the health file holds it and `ensemble health --format json` prints it
/// per node (docs/operations.md). Stable: fields may be added, never renamed or removed.
/// </summary>
public static class HealthDocument
{
    public static JsonObject Of(NodeHealth node)
    {
        var stores = new JsonArray();
        foreach (var s in node.Stores)
            stores.Add(new JsonObject { ["session"] = s.Session, ["backend"] = s.Backend, ["state"] = s.State, ["error"] = s.Error });
        return new JsonObject
        {
            ["timestamp"] = Time(node.CheckedAt),
            ["healthy"] = node.Healthy,
            ["reasons"] = new JsonArray(node.Reasons.Select(r => (JsonNode?)r).ToArray()),
            ["address"] = node.Address,
            ["roles"] = new JsonArray(node.Roles.Select(r => (JsonNode?)r).ToArray()),
            ["machine"] = node.Machine,
            ["member-status"] = node.MemberStatus,
            ["unreachable"] = new JsonArray(node.Unreachable.Select(r => (JsonNode?)r).ToArray()),
            ["stores"] = stores,
            ["journal"] = node.Journal is { } j
                ? new JsonObject { ["reachable"] = j.Reachable, ["error"] = j.Error, ["milliseconds"] = Math.Round(j.Milliseconds, 1) }
                : null,
            ["started-at"] = Time(node.StartedAt),
            ["uptime-seconds"] = Math.Max(0, (long)node.Uptime.TotalSeconds),
        };
    }

    public static string Time(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Reads what <see cref="Of"/> wrote back (the parts a probe needs: when, healthy, why), or null when it is not one.</summary>
    public static (DateTimeOffset CheckedAt, bool Healthy, IReadOnlyList<string> Reasons, JsonObject Document)? Read(string text)
    {
        try
        {
            if (JsonNode.Parse(text) is not JsonObject document) return null;
            var timestamp = DateTimeOffset.Parse((string)document["timestamp"]!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
            var healthy = (bool)document["healthy"]!;
            var reasons = (document["reasons"] as JsonArray)?.Select(r => (string?)r ?? "").ToList() ?? [];
            return (timestamp, healthy, reasons, document);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or ArgumentException or InvalidOperationException or NullReferenceException or InvalidCastException)
        {
            return null;
        }
    }
}

/// <summary>
/// The health file a supervisor reads without .NET: the node's last check, replaced atomically (written beside it,
/// then renamed), so a reader sees the previous check or this one, never half of one.
/// </summary>
public static class HealthFile
{
    public const string DefaultName = "health.json";

    public static void Write(string path, NodeHealth health)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, HealthDocument.Of(health).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(temp, path, overwrite: true);
    }
}
