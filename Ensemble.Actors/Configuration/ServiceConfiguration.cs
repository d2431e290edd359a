using System.Globalization;
using System.Text.Json;
using Ensemble.Formulas;

namespace Ensemble.Configuration;

/// <summary>
/// A service's configuration as the store holds it (<c>&lt;root&gt;/services/&lt;svc&gt;/config</c>): the values the operator
/// set, typed as JSON (string, number, boolean), and a version the controller bumps on every accepted change, so a unit
/// agent knows which change it has delivered to its config-changed hook. Options not set here take their default.
/// </summary>
public sealed record ServiceConfig(int Version, IReadOnlyDictionary<string, JsonElement> Values)
{
    public static ServiceConfig Empty { get; } = new(0, new Dictionary<string, JsonElement>());

    /// <summary>The values as string, long, double or bool.</summary>
    public IReadOnlyDictionary<string, object> Typed() =>
        Values.ToDictionary(kv => kv.Key, kv => ConfigValues.FromJson(kv.Value), StringComparer.Ordinal);

    public static ServiceConfig Of(int version, IReadOnlyDictionary<string, object> values) =>
        new(version, values.ToDictionary(kv => kv.Key, kv => ConfigValues.ToJson(kv.Value), StringComparer.Ordinal));
}

/// <summary>An option the operator had set that a new formula revision no longer takes: gone, or of another type now.</summary>
public sealed record DroppedOption(string Name, string Reason)
{
    public override string ToString() => $"{Name} ({Reason})";
}

/// <summary>The outcome of checking <c>key=value</c> pairs against a formula's options.</summary>
public abstract record ConfigDecision
{
    /// <summary>Values: the complete set values after the change; Changed: the options whose effective value moved.</summary>
    public sealed record Accepted(IReadOnlyDictionary<string, object> Values, IReadOnlyList<string> Changed) : ConfigDecision;

    /// <summary>Nothing changes; Reason is one sentence naming the option and the fix.</summary>
    public sealed record Refused(string Reason) : ConfigDecision;
}

/// <summary>
/// The rules of service configuration, pure: typing a value by its option (config.yaml's string, int — a 64-bit integer,
/// float — an invariant double, boolean — true or false), checking the operator's pairs, the effective configuration a
/// unit sees, and carrying values over to a new formula revision.
/// </summary>
public static class ConfigValues
{
    public const string String = "string", Int = "int", Float = "float", Boolean = "boolean";

    /// <summary>One value: far above any real setting, and the whole configuration must fit a store node (1 MB).</summary>
    public const int MaxValueLength = 64 * 1024;

    /// <summary>All set values with their names: half a store node, leaving room for JSON's escaping.</summary>
    public const int MaxTotalLength = 512 * 1024;

    /// <summary>Reads <paramref name="text"/> as a value of <paramref name="type"/>: string, long, double or bool; false when it is not one.</summary>
    public static bool TryParse(string type, string text, out object value)
    {
        value = text;
        switch (type)
        {
            case Int when long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l):
                value = l;
                return true;
            case Float when double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d):
                value = d;
                return true;
            case Boolean when text.Trim().Equals("true", StringComparison.OrdinalIgnoreCase):
                value = true;
                return true;
            case Boolean when text.Trim().Equals("false", StringComparison.OrdinalIgnoreCase):
                value = false;
                return true;
            case Int or Float or Boolean:
                return false;
            default:
                return true;
        }
    }

    /// <summary>How a value is written back for people and for the wire: invariant, booleans lower case.</summary>
    public static string Render(object value) => value switch
    {
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>The option's default as a typed value, or null when it has none.</summary>
    public static object? DefaultOf(ConfigOption option) =>
        option.Default is { } text && TryParse(option.Type, text, out var value) ? value : null;

    /// <summary>
    /// Splits <c>key=value</c> arguments; <c>key=</c> (nothing after '=') resets the option to its default. Null and a
    /// sentence when an argument is not of that form or a key is given twice.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? ParsePairs(IEnumerable<string> arguments, out string? problem)
    {
        problem = null;
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var argument in arguments)
        {
            var equals = argument.IndexOf('=');
            if (equals <= 0)
            {
                problem = $"'{argument}' is not an option setting; write key=value (key= resets the option to its default)";
                return null;
            }
            var key = argument[..equals].Trim();
            if (!pairs.TryAdd(key, argument[(equals + 1)..]))
            {
                problem = $"option '{key}' is given twice; give it once";
                return null;
            }
        }
        return pairs;
    }

    /// <summary>
    /// Checks <paramref name="pairs"/> (option → text; empty text resets it) against <paramref name="options"/>, the
    /// options of the service's current formula, over the values set now. Every pair must pass or nothing changes.
    /// </summary>
    public static ConfigDecision Decide(string service, IReadOnlyList<ConfigOption> options, IReadOnlyDictionary<string, object> current,
        IReadOnlyDictionary<string, string> pairs)
    {
        var byName = options.ToDictionary(o => o.Name, StringComparer.Ordinal);
        var values = new Dictionary<string, object>(current, StringComparer.Ordinal);
        foreach (var (name, text) in pairs.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!byName.TryGetValue(name, out var option))
                return new ConfigDecision.Refused(options.Count == 0
                    ? $"service '{service}' has no option '{name}': its formula declares no options in config.yaml"
                    : $"service '{service}' has no option '{name}'; its options are {string.Join(", ", options.Select(o => o.Name).Order(StringComparer.Ordinal))}");
            if (text.Length == 0)
            {
                values.Remove(name);
                continue;
            }
            if (text.Length > MaxValueLength)
                return new ConfigDecision.Refused($"the value of option '{name}' of service '{service}' is {FormulaLimits.Count(text.Length)} characters, over the limit of {FormulaLimits.Count(MaxValueLength)}; keep large data in a file the formula reads");
            if (!TryParse(option.Type, text, out var value))
                return new ConfigDecision.Refused($"option '{name}' of service '{service}' is {Article(option.Type)} {option.Type}, and '{text}' is not; {Hint(option.Type)}");
            values[name] = value;
        }
        var total = values.Sum(v => v.Key.Length + Render(v.Value).Length);
        if (total > MaxTotalLength)
            return new ConfigDecision.Refused($"the configuration of service '{service}' would hold {FormulaLimits.Count(total)} characters, over the limit of {FormulaLimits.Count(MaxTotalLength)}; reset options it does not need (key=)");
        var before = Effective(options, current);
        var after = Effective(options, values);
        var changed = options.Select(o => o.Name)
            .Where(n => !Equals(before[n], after[n]) || current.ContainsKey(n) != values.ContainsKey(n))
            .Order(StringComparer.Ordinal).ToList();
        return new ConfigDecision.Accepted(values, changed);
    }

    /// <summary>
    /// The configuration a unit sees: every option, with the value set or else its default (null when it has neither),
    /// typed string, long, double or bool. Values for options the formula does not declare are left out.
    /// </summary>
    public static IReadOnlyDictionary<string, object?> Effective(IReadOnlyList<ConfigOption> options, IReadOnlyDictionary<string, object> values)
    {
        var effective = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var option in options)
            effective[option.Name] = values.TryGetValue(option.Name, out var value) && Coerce(option.Type, value) is { } typed ? typed : DefaultOf(option);
        return effective;
    }

    /// <summary>
    /// Carries the values set for <paramref name="from"/>'s options over to <paramref name="to"/>'s: a value stays where
    /// its option still exists with the same type, or went from int to float; every other one is dropped and listed.
    /// </summary>
    public static (IReadOnlyDictionary<string, object> Kept, IReadOnlyList<DroppedOption> Dropped) Migrate(
        IReadOnlyList<ConfigOption> to, IReadOnlyDictionary<string, object> values)
    {
        var byName = to.ToDictionary(o => o.Name, StringComparer.Ordinal);
        var kept = new Dictionary<string, object>(StringComparer.Ordinal);
        var dropped = new List<DroppedOption>();
        foreach (var (name, value) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            if (!byName.TryGetValue(name, out var option))
                dropped.Add(new DroppedOption(name, "removed"));
            else if (Coerce(option.Type, value) is { } typed)
                kept[name] = typed;
            else
                dropped.Add(new DroppedOption(name, $"now {option.Type}"));
        }
        return (kept, dropped);
    }

    /// <summary>A stored value as the option's type: the same type, or a whole number for a float; null when it does not fit.</summary>
    public static object? Coerce(string type, object value) => (type, value) switch
    {
        (Int, long l) => l,
        (Float, double d) => d,
        (Float, long l) => (double)l,
        (Boolean, bool b) => b,
        (String or not (Int or Float or Boolean), string s) => s,
        _ => null,
    };

    public static JsonElement ToJson(object value) => JsonSerializer.SerializeToElement(value, value.GetType());

    /// <summary>A JSON value as string, long (a whole number that fits), double or bool.</summary>
    public static object FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number when element.TryGetInt64(out var l) && !element.GetRawText().Contains('.') && !element.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase) => l,
        JsonValueKind.Number => element.GetDouble(),
        JsonValueKind.String => element.GetString()!,
        _ => element.GetRawText(),
    };

    private static string Article(string type) => type is Int ? "an" : "a";

    private static string Hint(string type) => type switch
    {
        Int => "give a whole number such as 42",
        Float => "give a number such as 0.5",
        Boolean => "give true or false",
        _ => "give a string",
    };
}
