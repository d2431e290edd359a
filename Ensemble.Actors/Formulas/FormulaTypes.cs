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

/// <summary>
/// A formula packed for storage and transfer: a file of deterministic bytes, their sha256 (lowercase hex) and size.
/// Bundles are files, never byte arrays, so a formula of hundreds of MiB costs a buffer of memory, not its size.
/// Disposing deletes the file when the bundle owns it (a packer's or an upload's temporary file).
/// </summary>
public sealed class FormulaBundle(FormulaId id, string path, string sha256, long size, bool ownsFile = false) : IDisposable
{
    public FormulaId Id { get; } = id;

    /// <summary>The bundle's file.</summary>
    public string Path { get; } = path;

    public string Sha256 { get; } = sha256;

    public long Size { get; } = size;

    /// <summary>True when the file is this bundle's own temporary file: storage may move it instead of copying it.</summary>
    public bool OwnsFile { get; } = ownsFile;

    public FormulaRef Ref => new(Id, Sha256);

    /// <summary>Reads the file sequentially.</summary>
    public FileStream OpenRead() => BundleFiles.OpenRead(Path);

    public void Dispose()
    {
        if (!OwnsFile) return;
        try { File.Delete(Path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* a temporary file; the directory is cleaned up anyway */ }
    }

    public override string ToString() => $"{Id} ({Size} bytes, sha256 {Sha256[..Math.Min(12, Sha256.Length)]})";
}

/// <summary>An archive was refused before or while unpacking; nothing outside the target was touched.</summary>
public sealed class BundleRejectedException(string reason) : Exception(reason);
