using System.Globalization;

namespace Ensemble.Formulas;

/// <summary>
/// The caps every formula is held to, the same when it is loaded, packed and unpacked, so a formula that deploys
/// is one that every agent will unpack. Each default is far above what a real formula needs and far below what
/// would hurt a node; docs/formulas.md lists them with the reasons.
/// </summary>
public sealed record FormulaLimits
{
    public const long KiB = 1024;
    public const long MiB = 1024 * KiB;
    public const long GiB = 1024 * MiB;

    public static FormulaLimits Default { get; } = new();

    /// <summary>Files and directories in a formula (the archive's entries); vendored libraries stay in the low thousands.</summary>
    public int MaxEntries { get; init; } = 10_000;

    /// <summary>All files of a formula added up, uncompressed: what unpacking may write to an agent's disk.</summary>
    public long MaxTotalBytes { get; init; } = 256 * MiB;

    /// <summary>
    /// One file: hooks and templates are kilobytes, but a formula may carry a tool or a data set of a hundred MB;
    /// anything bigger is better fetched by a hook.
    /// </summary>
    public long MaxFileBytes { get; init; } = 128 * MiB;

    /// <summary>
    /// The packed (gzipped) bundle: what an upload and every agent's download move and every machine's cache keeps
    /// on disk. Bundles are files streamed in chunks, never held whole in memory, so this bounds disk and transfer
    /// time, not memory; it is the total cap, as incompressible content packs to about its own size.
    /// </summary>
    public long MaxBundleBytes { get; init; } = 256 * MiB;

    /// <summary>Levels of directories below the formula's top directory; a file at the top is one level deep.</summary>
    public int MaxPathDepth { get; init; } = 32;

    /// <summary>One file or directory name, in UTF-8 bytes: the ustar archive's name field.</summary>
    public int MaxNameBytes { get; init; } = 100;

    /// <summary>The directories before a path's last name, in UTF-8 bytes: the ustar archive's prefix field.</summary>
    public int MaxDirectoryPathBytes { get; init; } = 155;

    /// <summary>metadata.yaml and config.yaml are a few kilobytes; the cap is checked before the file is read.</summary>
    public long MaxYamlBytes { get; init; } = 1 * MiB;

    /// <summary>
    /// YAML nodes of one file counted as expanded, every use of an alias counting the whole anchored node again:
    /// the parser shares aliased nodes, so a "billion laughs" file is small until something walks it.
    /// </summary>
    public int MaxYamlNodes { get; init; } = 10_000;

    /// <summary>Nesting of YAML collections; the YAML node model is built recursively, so deeper nesting could exhaust the stack.</summary>
    public int MaxYamlDepth { get; init; } = 64;

    /// <summary>Characters of a formula name, which becomes a directory name, a store key and the default service name.</summary>
    public int MaxNameLength { get; init; } = 64;

    /// <summary>The highest revision; an in-place edit deploys the deployed revision + 1, which must still fit an int.</summary>
    public int MaxRevision { get; init; } = 1_000_000_000;

    /// <summary>Options in config.yaml; the largest real formulas have a few hundred.</summary>
    public int MaxConfigOptions { get; init; } = 1_000;

    /// <summary>Executables in hooks/, helpers included; a hook per relation event stays well below this.</summary>
    public int MaxHooks { get; init; } = 1_000;

    /// <summary>Directories a repository scan examines (top level and series directories together).</summary>
    public int MaxRepositoryDirectories { get; init; } = 10_000;

    /// <summary>The legacy revision file holds one number.</summary>
    public int MaxRevisionFileBytes { get; init; } = 64;

    /// <summary>A byte count for messages: "1.2 GiB", "64 MiB", "300 bytes".</summary>
    public static string Size(long bytes) => bytes switch
    {
        >= GiB => Scaled(bytes, GiB, "GiB"),
        >= MiB => Scaled(bytes, MiB, "MiB"),
        >= KiB => Scaled(bytes, KiB, "KiB"),
        1 => "1 byte",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " bytes",
    };

    /// <summary>A count for messages, with thousands separators: "10,000".</summary>
    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary><paramref name="bytes"/> for a message that compares it with <paramref name="limit"/>: exact when rounding would print both alike.</summary>
    public static string Size(long bytes, long limit) =>
        Size(bytes) == Size(limit) ? Count(bytes) + " bytes" : Size(bytes);

    // Rounded down, so a size over a limit never prints as more than it is.
    private static string Scaled(long bytes, long unit, string name)
    {
        var tenths = (long)Math.Floor(bytes * 10.0 / unit);
        return (tenths % 10 == 0
            ? (tenths / 10).ToString(CultureInfo.InvariantCulture)
            : (tenths / 10.0).ToString("0.0", CultureInfo.InvariantCulture)) + " " + name;
    }
}
