using System.Text.Json;
using System.Text.Json.Nodes;
using Ensemble.Configuration;
using Spectre.Console;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.EventEmitters;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli.Output;

/// <summary>`ensemble get` as a table, or as the JSON/YAML documented in docs/cli.md (values typed as the options are).</summary>
public static class ConfigFormat
{
    public static JsonObject Document(ConfigView view)
    {
        var options = new JsonObject();
        foreach (var entry in view.Options)
            options[entry.Name] = new JsonObject
            {
                ["type"] = entry.Type,
                ["default"] = Typed(entry.Type, entry.Default),
                ["description"] = entry.Description,
                ["value"] = Typed(entry.Type, entry.Value),
                ["set"] = entry.Set,
            };
        return new JsonObject
        {
            ["service"] = view.Service,
            ["formula"] = view.Formula.ToString(),
            ["version"] = view.Version,
            ["options"] = options,
        };
    }

    public static string Json(ConfigView view) => Document(view).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    public static string Yaml(ConfigView view)
    {
        var options = view.Options.ToDictionary(e => e.Name, e => (object?)new Dictionary<string, object?>
        {
            ["type"] = e.Type,
            ["default"] = Plain(e.Type, e.Default),
            ["description"] = e.Description,
            ["value"] = Plain(e.Type, e.Value),
            ["set"] = e.Set,
        });
        var document = new Dictionary<string, object?>
        {
            ["service"] = view.Service, ["formula"] = view.Formula.ToString(), ["version"] = view.Version, ["options"] = options,
        };
        return new SerializerBuilder().ConfigureDefaultValuesHandling(DefaultValuesHandling.Preserve)
            .WithEventEmitter(next => new NullAsNull(next)).Build().Serialize(document);
    }

    public static void Table(ConfigView view, IAnsiConsole console)
    {
        if (view.Options.Count == 0)
        {
            console.WriteLine($"'{view.Service}' ({view.Formula}) has no options");
            return;
        }
        var table = Terminal.Table("OPTION", "TYPE", "VALUE", "SOURCE", "DEFAULT", "DESCRIPTION");
        foreach (var e in view.Options)
            table.AddRow(new Text(e.Name), new Text(e.Type), new Text(e.Value ?? ""), new Text(e.Set ? "set" : "default"),
                new Text(e.Default ?? ""), new Text(e.Description ?? ""));
        console.Write(table);
    }

    /// <summary>Writes null as `null`, as the JSON does, rather than as an empty value.</summary>
    private sealed class NullAsNull(IEventEmitter next) : ChainedEventEmitter(next)
    {
        public override void Emit(ScalarEventInfo eventInfo, IEmitter emitter)
        {
            if (eventInfo.Source.Value is null) emitter.Emit(new Scalar("null"));
            else base.Emit(eventInfo, emitter);
        }
    }

    private static object? Plain(string type, string? text) =>
        text is null ? null : ConfigValues.TryParse(type, text, out var value) ? value : text;

    private static JsonNode? Typed(string type, string? text) => Plain(type, text) switch
    {
        null => null,
        bool b => JsonValue.Create(b),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        var other => JsonValue.Create(other.ToString()),
    };
}
