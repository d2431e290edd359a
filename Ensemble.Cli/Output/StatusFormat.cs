using Ensemble.Machines;
using Ensemble.Units;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ensemble.Services;
using Spectre.Console;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.EventEmitters;

namespace Ensemble.Cli.Output;

/// <summary>
/// How `ensemble status` prints: tables with headers for people; for programs the stable document of
/// docs/cli.md, as JSON or as YAML (the same fields either way).
/// </summary>
public static class StatusFormat
{
    /// <summary>The document both machine formats print; fields are only ever added (docs/cli.md).</summary>
    public static JsonObject Document(EnvironmentReplies.Status status)
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
                    ["state"] = UnitLifecycle.StateName(unit.State),
                    ["upgrading"] = unit.Upgrading,
                    ["machine"] = unit.Machine,
                    ["error"] = unit.Error,
                    ["progress"] = unit.Progress,
                    ["dying"] = unit.Dying,
                };
            }
            services[name] = new JsonObject
            {
                ["formula"] = service.Formula,
                ["upgrade-running"] = service.UpgradeRunning,
                ["upgrade-unknown"] = service.UpgradeUnknown,
                ["dying"] = service.Dying,
                ["units"] = units,
            };
        }
        var machines = new JsonObject();
        foreach (var (name, machine) in status.Machines ?? new Dictionary<string, EnvironmentReplies.MachineStatus>())
        {
            var units = new JsonArray();
            foreach (var unit in machine.Units) units.Add(unit);
            machines[name] = new JsonObject
            {
                ["address"] = machine.Address,
                ["state"] = AgentStates.Name(machine.State),
                ["since"] = Since(machine.Since),
                ["units"] = units,
            };
        }
        var controllers = new JsonArray();
        foreach (var controller in status.Controllers ?? [])
            controllers.Add(new JsonObject
            {
                ["address"] = controller.Address,
                ["since"] = Since(controller.Since),
                ["active"] = controller.Active,
                ["active-since"] = Since(controller.ActiveSince),
                ["journal"] = controller.Journal,
            });
        var relations = new JsonArray();
        foreach (var relation in status.Relations ?? [])
            relations.Add(new JsonObject
            {
                ["id"] = relation.Id,
                ["interface"] = relation.Interface,
                ["endpoints"] = new JsonArray(relation.Endpoints.Select(e => (JsonNode?)e).ToArray()),
                ["dying"] = relation.Dying,
                ["units"] = new JsonArray(relation.Units.Select(u => (JsonNode?)u).ToArray()),
            });
        var unreadable = new JsonArray();
        foreach (var record in status.Unreadable ?? [])
            unreadable.Add(new JsonObject { ["path"] = record.Path, ["reason"] = record.Reason });
        return new JsonObject { ["services"] = services, ["machines"] = machines, ["controllers"] = controllers, ["relations"] = relations, ["unreadable"] = unreadable };
    }

    /// <summary>When an agent entered its state, in UTC to the second (ISO 8601), or null when unknown.</summary>
    private static string? Since(DateTimeOffset? since) =>
        since?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public static string Json(EnvironmentReplies.Status status) =>
        Document(status).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    public static string Yaml(EnvironmentReplies.Status status) => Yaml(Document(status));

    /// <summary>A JSON document as YAML with the same fields (also `ensemble health --format yaml`).</summary>
    public static string Yaml(JsonObject document) =>
        new SerializerBuilder()
            .ConfigureDefaultValuesHandling(DefaultValuesHandling.Preserve)
            .WithEventEmitter(next => new NullAsNull(next))
            .Build()
            .Serialize(Plain(document));

    /// <summary>Two tables: the services, then every unit; then what could not be read.</summary>
    public static void Table(EnvironmentReplies.Status status, IAnsiConsole console)
    {
        if (status.Services.Count == 0)
            console.WriteLine("no services deployed");
        else
        {
            var services = Terminal.Table("SERVICE", "FORMULA", "UNITS", "UPGRADE");
            foreach (var (name, service) in status.Services)
            {
                var upgrade = service.UpgradeUnknown is { } unknown ? $"unknown: {unknown}" : service.UpgradeRunning ? "running" : "";
                services.AddRow(Cell(service.Dying ? $"{name} (dying)" : name), Cell(service.Formula), Cell(service.Units.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)), Cell(upgrade));
            }
            console.Write(services);

            var units = Terminal.Table("UNIT", "FORMULA", "STATE", "MACHINE", "UPGRADE", "ERROR");
            foreach (var service in status.Services.Values)
            foreach (var (name, unit) in service.Units)
            {
                var upgrade = unit.Upgrading ? unit.Progress ?? "pending" : unit.Progress ?? "";
                units.AddRow(Cell(name), Cell(unit.Formula), Cell(UnitLifecycle.StateName(unit.State) + (unit.Dying ? ", dying" : "")), Cell(unit.Machine), Cell(upgrade), Cell(unit.Error ?? ""));
            }
            if (units.Rows.Count > 0)
            {
                console.WriteLine();
                console.Write(units);
            }
        }
        if (status.Machines is { Count: > 0 } machines)
        {
            var table = Terminal.Table("MACHINE", "ADDRESS", "STATE", "SINCE", "UNITS");
            foreach (var (name, machine) in machines)
                table.AddRow(Cell(name), Cell(machine.Address ?? ""), Cell(AgentStates.Name(machine.State)),
                    Cell(Since(machine.Since)?.Replace('T', ' ') ?? ""), Cell(Units(machine.Units)));
            console.WriteLine();
            console.Write(table);
        }
        if (status.Relations is { Count: > 0 } relations)
        {
            var table = Terminal.Table("RELATION", "INTERFACE", "ENDPOINTS", "UNITS");
            foreach (var relation in relations)
                table.AddRow(Cell(relation.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + (relation.Dying ? " (dying)" : "")), Cell(relation.Interface),
                    Cell(string.Join(" ", relation.Endpoints)), Cell(Units(relation.Units)));
            console.WriteLine();
            console.Write(table);
        }
        if (status.Controllers is { Count: > 0 } controllers)
        {
            var table = Terminal.Table("CONTROLLER", "SINCE", "ACTIVE", "JOURNAL");
            foreach (var controller in controllers)
                table.AddRow(Cell(controller.Address), Cell(Since(controller.Since)?.Replace('T', ' ') ?? ""),
                    Cell(controller.Active ? $"active since {Since(controller.ActiveSince)?.Replace('T', ' ')}" : "standby"), Cell(controller.Journal ?? ""));
            console.WriteLine();
            console.Write(table);
        }
        if (status.Unreadable is { Count: > 0 } unreadable)
        {
            console.WriteLine("could not read (left out above):");
            foreach (var record in unreadable) console.WriteLine($"  {record.Path}: {record.Reason}");
        }
    }

    private static Text Cell(string text) => new(text);

    /// <summary>A machine's units in one cell: the first few by name, then how many more.</summary>
    private static string Units(IReadOnlyList<string> units) =>
        units.Count <= 5 ? string.Join(", ", units) : $"{string.Join(", ", units.Take(5))} and {units.Count - 5} more";

    private static object? Plain(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => o.ToDictionary(kv => kv.Key, kv => Plain(kv.Value)),
        JsonArray a => a.Select(Plain).ToList(),
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v => v.ToString(),
        _ => node.ToJsonString(),
    };

    /// <summary>Writes null as `null`, as the JSON does, rather than as an empty value.</summary>
    private sealed class NullAsNull(IEventEmitter next) : ChainedEventEmitter(next)
    {
        public override void Emit(ScalarEventInfo eventInfo, IEmitter emitter)
        {
            if (eventInfo.Source.Value is null) emitter.Emit(new Scalar("null"));
            else base.Emit(eventInfo, emitter);
        }
    }
}
