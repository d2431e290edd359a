using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ensemble.Services;

namespace Ensemble.Cli;

/// <summary>How `ensemble status` prints: a table for people, a stable JSON document for programs (docs/cli.md).</summary>
public static class StatusFormat
{
    public static string Json(EnvironmentProtocol.Status status)
    {
        var services = new JsonObject();
        foreach (var (name, service) in status.Services)
        {
            var units = new JsonObject();
            foreach (var (unitName, unit) in service.Units)
            {
                units[unitName] = new JsonObject
                {
                    ["formula"] = unit.Formula,
                    ["state"] = unit.State,
                    ["upgrading"] = unit.Upgrading,
                    ["machine"] = unit.Machine,
                    ["error"] = unit.Error,
                    ["progress"] = unit.Progress,
                };
            }
            services[name] = new JsonObject { ["formula"] = service.Formula, ["upgrade-running"] = service.UpgradeRunning, ["units"] = units };
        }
        return new JsonObject { ["services"] = services }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    public static string Table(EnvironmentProtocol.Status status)
    {
        if (status.Services.Count == 0) return "no services deployed\n";
        var text = new StringBuilder();
        foreach (var (name, service) in status.Services)
        {
            text.AppendLine($"{name}: {service.Formula}{(service.UpgradeRunning ? "  (upgrade running)" : "")}");
            foreach (var (unitName, unit) in service.Units)
            {
                var upgrading = unit.Upgrading ? $"upgrading{(unit.Progress is { } p ? $" ({p})" : "")}" : "";
                text.AppendLine($"  {unitName,-16} {unit.Formula,-22} {unit.State,-14} {upgrading,-22} {unit.Error}".TrimEnd());
            }
        }
        return text.ToString();
    }
}
