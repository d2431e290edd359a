namespace Ensemble.Topology;

/// <summary>
/// A service as the shared topology holds it. Dying: destroyed, but some of its units wait for their machine
/// to come back and remove them; the record goes with the last of them.
/// </summary>
public sealed record ServiceRecord(string Name, string Formula, string Sha256, string Repository, bool Dying = false);

/// <summary>
/// A unit as the shared topology holds it; Formula and Sha256 name exactly the content the unit runs
/// (an id alone is not enough: two repositories may hold different content under one name and revision).
/// Dying: removed while its machine's agent was down; that agent removes it (stop hook, files) when it is
/// back, and then the record.
/// </summary>
public sealed record UnitRecord(string Name, string Formula, Units.UnitPhase State, string Machine, string? Error = null, string? Sha256 = null,
    bool Dying = false)
{
    [System.Text.Json.Serialization.JsonIgnore] public string Service => UnitNames.ServiceOf(Name);
    [System.Text.Json.Serialization.JsonIgnore] public int Number => UnitNames.NumberOf(Name);
}

/// <summary>Present while a unit is asked to move to another formula revision.</summary>
public sealed record UpgradeFlag(string Formula, string Sha256);

/// <summary>
/// A formula revision known to the environment and where its bundle is stored, with what the controller needs of its
/// metadata without unpacking it: the relation endpoints (name → interface) and the configuration options.
/// Records written before relations existed have them null.
/// </summary>
public sealed record FormulaRecord(
    string Id,
    string Sha256,
    string StorageKey,
    IReadOnlyDictionary<string, string>? Provides = null,
    IReadOnlyDictionary<string, string>? Requires = null,
    IReadOnlyDictionary<string, string>? Peers = null,
    IReadOnlyList<Formulas.ConfigOption>? Options = null);

/// <summary>A live agent: the machine it serves and the actor path that takes its unit commands.</summary>
public sealed record AgentPresence(string Machine, string Address);

/// <summary>
/// A machine of the environment. TokenHash is the SHA-256 (hex) of its join token — never the token itself;
/// null for the controller's own machine, which joins no other way. Node is the cluster address of the node
/// last admitted for it; State and Since are its agent's state as the controller last saw it, and since when.
/// </summary>
public sealed record MachineRecord(
    string Name,
    string? TokenHash,
    DateTimeOffset AddedAt,
    string? Node = null,
    DateTimeOffset? AdmittedAt = null,
    Machines.AgentState State = Machines.AgentState.Down,
    DateTimeOffset? Since = null);

/// <summary>Unit names are <c>&lt;service&gt;/&lt;n&gt;</c>.</summary>
public static class UnitNames
{
    public static string Of(string service, int number) => $"{service}/{number}";

    public static string ServiceOf(string unit) => unit[..Separator(unit)];

    public static int NumberOf(string unit) => int.Parse(unit[(Separator(unit) + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    public static bool IsValid(string unit)
    {
        var slash = unit.IndexOf('/');
        return slash > 0 && slash == unit.LastIndexOf('/') && IsValidServiceName(unit[..slash])
            && int.TryParse(unit[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _);
    }

    /// <summary>Service names become path segments and directory names, so keep them plain.</summary>
    public static bool IsValidServiceName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetterLower(name[0])
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    /// <summary>A file-system-safe form of a unit name: <c>wordpress/0</c> becomes <c>wordpress-0</c>.</summary>
    public static string DirectoryName(string unit) => unit.Replace('/', '-');

    private static int Separator(string unit)
    {
        var slash = unit.IndexOf('/');
        if (slash <= 0) throw new FormatException($"'{unit}' is not a unit name of the form <service>/<n>.");
        return slash;
    }
}

