using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Ensemble.Hooks.Tools;

/// <summary>What a hook tool printed and how it exited: 0 done, 1 refused, 2 bad usage.</summary>
public sealed record HookToolResult(int ExitCode, string Stdout, string Stderr)
{
    public const int Done = 0;
    public const int Refused = 1;
    public const int Usage = 2;
}

/// <summary>
/// The hook tools of one hook run, without sockets or processes: answers each tool call from the unit's
/// <see cref="IHookToolData"/> and keeps the hook's relation-set writes pending, for the unit agent to
/// commit only if the hook exits 0.
/// </summary>
public sealed class HookSession(IHookToolData data, RelationHookScope? scope, Action<string> log, string? hook = null)
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly string[] LogLevels = ["DEBUG", "INFO", "WARNING", "ERROR"];

    private readonly Dictionary<int, Dictionary<string, string?>> _pending = [];
    // Tools of one hook may run at once (a hook can background them); each call sees a consistent state.
    private readonly Lock _gate = new();

    /// <summary>The hook this session serves, when the agent said (used in sentences only).</summary>
    public string? Hook => hook;

    public RelationHookScope? Scope => scope;

    /// <summary>Relation id → key → value this hook wrote with relation-set; a null value deletes the key.</summary>
    public IReadOnlyDictionary<int, IReadOnlyDictionary<string, string?>> PendingSettings
    {
        get
        {
            lock (_gate)
                return _pending.ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, string?>)new Dictionary<string, string?>(p.Value, StringComparer.Ordinal));
        }
    }

    public HookToolResult Invoke(string tool, IReadOnlyList<string> args)
    {
        lock (_gate)
        {
            try
            {
                return tool switch
                {
                    "relation-get" => RelationGet(args),
                    "relation-set" => RelationSet(args),
                    "relation-list" => RelationList(args),
                    "relation-ids" => RelationIds(args),
                    "config-get" => ConfigGet(args),
                    "unit-get" => UnitGet(args),
                    "ensemble-log" => EnsembleLog(args),
                    _ => throw new Refusal(HookToolResult.Usage, $"'{tool}' is not a hook tool; the hook tools are {string.Join(", ", HookTools.Names)}"),
                };
            }
            catch (Refusal refusal)
            {
                return new HookToolResult(refusal.ExitCode, "", $"{tool}: {refusal.Sentence}.\n");
            }
            catch (HelpRequested help)
            {
                return new HookToolResult(HookToolResult.Done, $"usage: {help.Usage}\n", "");
            }
        }
    }

    private HookToolResult RelationGet(IReadOnlyList<string> args)
    {
        const string usage = "relation-get [-r ID] [--format text|json] [KEY|-] [UNIT]";
        var parsed = ToolArguments.Parse(args, usage, relation: true, format: true);
        if (parsed.Positional.Count > 2) throw UsageError(usage, $"too many arguments ({string.Join(' ', parsed.Positional)})");
        var key = parsed.Positional.Count > 0 && parsed.Positional[0] != "-" ? parsed.Positional[0] : null;
        var relation = ResolveRelation(parsed.Relation);
        string unit;
        if (parsed.Positional.Count == 2) unit = parsed.Positional[1];
        else if (scope is { RemoteUnit: { } remote } && scope.RelationId == relation.Id) unit = remote;
        else throw new Refusal(HookToolResult.Refused, $"name the unit to read in relation {relation.Key}, as in relation-get -r {relation.Key} {key ?? "-"} UNIT (relation-list -r {relation.Key} lists them)");
        if (!IsUnitName(unit)) throw UsageError(usage, $"'{unit}' is not a unit name; give it as SERVICE/N");
        if (unit != data.Unit && !relation.Units.Contains(unit) && !(scope?.RelationId == relation.Id && scope.RemoteUnit == unit))
            throw new Refusal(HookToolResult.Refused, $"unit {unit} is not in relation {relation.Key}; relation-list -r {relation.Key} lists the units in it");

        var settings = unit == data.Unit ? OwnSettings(relation.Id) : data.Settings(relation.Id, unit) ?? new Dictionary<string, string>();
        if (key is not null)
        {
            var found = settings.TryGetValue(key, out var value);
            if (parsed.Json) return Json(w => { if (found) w.WriteStringValue(value); else w.WriteNullValue(); });
            return Done(found ? value + "\n" : "");
        }
        var sorted = settings.OrderBy(s => s.Key, StringComparer.Ordinal).ToList();
        if (parsed.Json) return Json(w => { w.WriteStartObject(); foreach (var (k, v) in sorted) w.WriteString(k, v); w.WriteEndObject(); });
        return Done(string.Concat(sorted.Select(s => $"{s.Key}: {s.Value}\n")));
    }

    private HookToolResult RelationSet(IReadOnlyList<string> args)
    {
        const string usage = "relation-set [-r ID] KEY=VALUE...";
        var parsed = ToolArguments.Parse(args, usage, relation: true, format: false);
        if (parsed.Positional.Count == 0) throw UsageError(usage, "nothing to set; give KEY=VALUE pairs (an empty value deletes the key)");
        var writes = new List<(string Key, string? Value)>();
        foreach (var pair in parsed.Positional)
        {
            var equals = pair.IndexOf('=');
            if (equals < 0) throw UsageError(usage, $"'{pair}' is not KEY=VALUE; give each setting as KEY=VALUE (an empty value deletes the key)");
            var key = pair[..equals];
            if (key.Length == 0 || key.Any(char.IsWhiteSpace))
                throw UsageError(usage, $"'{key}' in '{pair}' is not a settings key; a key is not empty and has no '=' or whitespace");
            var value = pair[(equals + 1)..];
            writes.Add((key, value.Length == 0 ? null : value));
        }
        var relation = ResolveRelation(parsed.Relation);
        if (!_pending.TryGetValue(relation.Id, out var pending)) _pending[relation.Id] = pending = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (key, value) in writes) pending[key] = value;
        return Done("");
    }

    private HookToolResult RelationList(IReadOnlyList<string> args)
    {
        const string usage = "relation-list [-r ID | NAME] [--format text|json]";
        var parsed = ToolArguments.Parse(args, usage, relation: true, format: true);
        if (parsed.Positional.Count > 1) throw UsageError(usage, $"too many arguments ({string.Join(' ', parsed.Positional)})");
        if (parsed.Positional.Count == 1 && parsed.Relation is not null) throw UsageError(usage, "give either -r ID or a relation name, not both");
        IEnumerable<string> units;
        // `relation-list db:3` is what `relation-list -r db:3` means; an endpoint name never has a ':'.
        if (parsed.Positional.Count == 1 && !parsed.Positional[0].Contains(':'))
            units = data.Relations.Where(r => r.Name == parsed.Positional[0]).SelectMany(r => r.Units);
        else
            units = ResolveRelation(parsed.Positional.Count == 1 ? parsed.Positional[0] : parsed.Relation).Units;
        return List(units.Distinct().Order(Relations.UnitOrder.Instance).ToList(), parsed.Json);
    }

    private HookToolResult RelationIds(IReadOnlyList<string> args)
    {
        const string usage = "relation-ids [--format text|json] NAME";
        var parsed = ToolArguments.Parse(args, usage, relation: false, format: true);
        if (parsed.Positional.Count > 1) throw UsageError(usage, $"too many arguments ({string.Join(' ', parsed.Positional)})");
        var name = parsed.Positional.Count == 1 ? parsed.Positional[0]
            : scope?.RelationName ?? throw new Refusal(HookToolResult.Refused, $"{ThisHook} runs outside a relation; name the endpoint, as in relation-ids NAME");
        return List(data.Relations.Where(r => r.Name == name).OrderBy(r => r.Id).Select(r => r.Key).ToList(), parsed.Json);
    }

    private HookToolResult ConfigGet(IReadOnlyList<string> args)
    {
        const string usage = "config-get [--format text|json] [KEY]";
        var parsed = ToolArguments.Parse(args, usage, relation: false, format: true);
        if (parsed.Positional.Count > 1) throw UsageError(usage, $"too many arguments ({string.Join(' ', parsed.Positional)})");
        var config = data.Config;
        if (parsed.Positional.Count == 1)
        {
            var key = parsed.Positional[0];
            if (!config.TryGetValue(key, out var value))
            {
                var options = config.Keys.Order(StringComparer.Ordinal).ToList();
                throw new Refusal(HookToolResult.Refused, options.Count == 0
                    ? $"this formula has no option '{key}'; its config.yaml declares no options"
                    : $"this formula has no option '{key}'; its options are {string.Join(", ", options)}");
            }
            if (parsed.Json) return Json(w => WriteConfigValue(w, value));
            return Done(value is null ? "" : ConfigText(value) + "\n");
        }
        // Like config-get in Juju: options unset and without a default are left out of the listing.
        var set = config.Where(c => c.Value is not null).OrderBy(c => c.Key, StringComparer.Ordinal).ToList();
        if (parsed.Json)
            return Json(w =>
            {
                w.WriteStartObject();
                foreach (var (k, v) in set) { w.WritePropertyName(k); WriteConfigValue(w, v); }
                w.WriteEndObject();
            });
        return Done(string.Concat(set.Select(c => $"{c.Key}: {ConfigText(c.Value!)}\n")));
    }

    private HookToolResult UnitGet(IReadOnlyList<string> args)
    {
        const string usage = "unit-get [--format text|json] private-address|public-address";
        var parsed = ToolArguments.Parse(args, usage, relation: false, format: true);
        if (parsed.Positional.Count != 1) throw UsageError(usage, "give one setting, private-address or public-address");
        var value = parsed.Positional[0] switch
        {
            "private-address" => data.PrivateAddress,
            "public-address" => data.PublicAddress,
            var other => throw UsageError(usage, $"there is no unit setting '{other}'; give private-address or public-address"),
        };
        return parsed.Json ? Json(w => w.WriteStringValue(value)) : Done(value + "\n");
    }

    private HookToolResult EnsembleLog(IReadOnlyList<string> args)
    {
        const string usage = "ensemble-log [-l DEBUG|INFO|WARNING|ERROR] MESSAGE...";
        var parsed = ToolArguments.Parse(args, usage, relation: false, format: false, level: true);
        var level = (parsed.Level ?? "INFO").ToUpperInvariant();
        if (!LogLevels.Contains(level)) throw UsageError(usage, $"'{parsed.Level}' is not a log level; give DEBUG, INFO, WARNING or ERROR");
        if (parsed.Positional.Count == 0) throw UsageError(usage, "nothing to log; give a message");
        // One unit log line per message line, so every line keeps its timestamp.
        foreach (var line in string.Join(' ', parsed.Positional).ReplaceLineEndings("\n").Split('\n'))
            log($"{level}: {line}");
        return Done("");
    }

    private IReadOnlyDictionary<string, string> OwnSettings(int relationId)
    {
        var merged = new Dictionary<string, string>(data.Settings(relationId, data.Unit) ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (_pending.TryGetValue(relationId, out var pending))
            foreach (var (key, value) in pending)
                if (value is null) merged.Remove(key);
                else merged[key] = value;
        return merged;
    }

    private HookRelation ResolveRelation(string? given)
    {
        if (given is null)
        {
            if (scope is null) throw new Refusal(HookToolResult.Refused, $"{ThisHook} runs outside a relation; name one with -r ID (relation-ids NAME lists them)");
            return Find(scope.RelationId) ?? new HookRelation(scope.RelationId, scope.RelationName, "", []);
        }
        var colon = given.LastIndexOf(':');
        var name = colon >= 0 ? given[..colon] : null;
        if (name == "" || !int.TryParse(given[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            throw new Refusal(HookToolResult.Usage, $"'{given}' is not a relation id; give it as NAME:N or N (relation-ids NAME lists them)");
        var relation = Find(id);
        if (relation is null || (name is not null && relation.Name != name))
            throw new Refusal(HookToolResult.Refused, $"this unit is in no relation {given}; relation-ids {name ?? "NAME"} lists the relations it is in");
        return relation;
    }

    /// <summary>A relation of the unit; the hook's own relation counts even when it is being broken and no longer listed.</summary>
    private HookRelation? Find(int id) =>
        data.Relations.FirstOrDefault(r => r.Id == id)
        ?? (scope is not null && scope.RelationId == id ? new HookRelation(scope.RelationId, scope.RelationName, "", []) : null);

    private string ThisHook => hook is null ? "this hook" : $"this hook ({hook})";

    private static Refusal UsageError(string usage, string problem) => new(HookToolResult.Usage, $"{problem} (usage: {usage})");

    private static bool IsUnitName(string unit)
    {
        var slash = unit.IndexOf('/');
        return slash > 0 && slash < unit.Length - 1 && unit[(slash + 1)..].All(char.IsAsciiDigit);
    }

    private static string ConfigText(object value) => value switch
    {
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void WriteConfigValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case long l: writer.WriteNumberValue(l); break;
            case int i: writer.WriteNumberValue(i); break;
            case double d: writer.WriteNumberValue(d); break;
            case float f: writer.WriteNumberValue(f); break;
            case decimal m: writer.WriteNumberValue(m); break;
            default: writer.WriteStringValue(ConfigText(value)); break;
        }
    }

    private static HookToolResult List(IReadOnlyList<string> items, bool json) =>
        json ? Json(w => { w.WriteStartArray(); foreach (var item in items) w.WriteStringValue(item); w.WriteEndArray(); })
            : Done(string.Concat(items.Select(i => i + "\n")));

    private static HookToolResult Done(string stdout) => new(HookToolResult.Done, stdout, "");

    private static HookToolResult Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonOptions)) write(writer);
        return Done(Encoding.UTF8.GetString(buffer.ToArray()) + "\n");
    }


    /// <summary>A tool call the session refuses: one sentence, without the tool's name or the final full stop.</summary>
    private sealed class Refusal(int exitCode, string sentence) : Exception(sentence)
    {
        public int ExitCode { get; } = exitCode;
        public string Sentence => Message;
    }

    private sealed class HelpRequested(string usage) : Exception(usage)
    {
        public string Usage => Message;
    }

    /// <summary>The flags and positional arguments of one call; flags may come anywhere before a `--`.</summary>
    private sealed class ToolArguments
    {
        public string? Relation { get; private set; }
        public string? Level { get; private set; }
        public bool Json { get; private set; }
        public List<string> Positional { get; } = [];

        public static ToolArguments Parse(IReadOnlyList<string> args, string usage, bool relation, bool format, bool level = false)
        {
            var parsed = new ToolArguments();
            for (var i = 0; i < args.Count; i++)
            {
                var arg = args[i];
                if (arg == "--")
                {
                    parsed.Positional.AddRange(args.Skip(i + 1));
                    break;
                }
                if (arg.Length < 2 || arg[0] != '-')
                {
                    parsed.Positional.Add(arg);
                    continue;
                }
                var equals = arg.StartsWith("--", StringComparison.Ordinal) ? arg.IndexOf('=') : -1;
                var flag = equals > 0 ? arg[..equals] : arg;
                switch (flag)
                {
                    case "-h" or "--help":
                        throw new HelpRequested(usage);
                    case "-r" or "--relation" when relation:
                        parsed.Relation = Value();
                        break;
                    case "--format" when format:
                        var value = Value();
                        parsed.Json = value switch
                        {
                            "json" => true,
                            "text" => false,
                            _ => throw UsageError(usage, $"--format takes text or json, not '{value}'"),
                        };
                        break;
                    case "-l" or "--log-level" when level:
                        parsed.Level = Value();
                        break;
                    default:
                        throw UsageError(usage, $"there is no flag {flag} (put -- before an argument that starts with '-')");
                }

                string Value()
                {
                    if (equals > 0) return arg[(equals + 1)..];
                    if (i + 1 >= args.Count) throw UsageError(usage, $"{flag} needs a value");
                    return args[++i];
                }
            }
            return parsed;
        }
    }
}
