using System.Globalization;

namespace Ensemble.Formulas;

/// <summary>Identity of a formula revision as stored and referenced: <c>local:&lt;name&gt;-&lt;revision&gt;</c>.</summary>
public readonly record struct FormulaId(string Name, int Revision)
{
    public const string LocalScheme = "local";

    public override string ToString() => $"{LocalScheme}:{Name}-{Revision.ToString(CultureInfo.InvariantCulture)}";

    public static bool TryParse(string? text, out FormulaId id)
    {
        id = default;
        if (text is null || !text.StartsWith(LocalScheme + ":", StringComparison.Ordinal)) return false;
        var body = text[(LocalScheme.Length + 1)..];
        var dash = body.LastIndexOf('-');
        if (dash <= 0 || !int.TryParse(body[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var rev))
            return false;
        id = new FormulaId(body[..dash], rev);
        return true;
    }

    public static FormulaId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{text}' is not a formula reference of the form local:<name>-<revision>.");
}

/// <summary>What metadata.yaml says about a formula.</summary>
public sealed record FormulaMetadata(
    string Name,
    int Revision,
    string Summary,
    string Description,
    IReadOnlyDictionary<string, string> Provides,
    IReadOnlyDictionary<string, string> Requires,
    IReadOnlyDictionary<string, string> Peers);

/// <summary>One option of config.yaml.</summary>
public sealed record ConfigOption(string Name, string Type, string? Default, string? Description);

/// <summary>A validated formula directory on disk.</summary>
public sealed record Formula(
    string Directory,
    FormulaMetadata Metadata,
    IReadOnlyList<ConfigOption> Config,
    IReadOnlyList<string> Hooks)
{
    public FormulaId Id => new(Metadata.Name, Metadata.Revision);
}

/// <summary>One problem found while validating a formula: the file, the field and what is wrong.</summary>
public sealed record FormulaProblem(string File, string Field, string Message)
{
    public override string ToString() => $"{File}: {Field}: {Message}";
}

/// <summary>A formula was refused; every problem names its file, its field or limit, and the fix.</summary>
public sealed class FormulaValidationException(string directory, IReadOnlyList<FormulaProblem> problems)
    : Exception($"Formula at {directory} is invalid: " + string.Join("; ", problems))
{
    public string FormulaDirectory { get; } = directory;
    public IReadOnlyList<FormulaProblem> Problems { get; } = problems;
}

/// <summary>A formula packed for storage and transfer: deterministic bytes and their sha256 (lowercase hex).</summary>
public sealed record FormulaBundle(FormulaId Id, byte[] Bytes, string Sha256);

/// <summary>An archive was refused before or while unpacking; nothing outside the target was touched.</summary>
public sealed class BundleRejectedException(string reason) : Exception(reason);
