using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>Reads and validates a formula directory, reporting every problem at once so the author fixes them in one pass.</summary>
public static class FormulaLoader
{
    public const string MetadataFile = "metadata.yaml";
    public const string ConfigFile = "config.yaml";
    public const string RevisionFile = "revision";
    public const string HooksDirectory = "hooks";

    /// <summary>Loads the formula in <paramref name="directory"/>; throws <see cref="FormulaValidationException"/> listing all problems.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory itself does not exist.</exception>
    /// <exception cref="RepositoryAccessException">The directory or something in it cannot be read.</exception>
    public static Formula Load(string directory, FormulaLimits? limits = null)
    {
        var outcome = Inspect(directory, limits);
        return outcome.Formula ?? throw outcome.Error!;
    }

    /// <summary>Loads without throwing for validation problems, and says which name the directory claims even when invalid.</summary>
    internal static FormulaLoadOutcome Inspect(string directory, FormulaLimits? limits = null)
    {
        limits ??= FormulaLimits.Default;
        var full = Path.GetFullPath(directory);
        RequireDirectory(full, "formula directory");

        var problems = new List<FormulaProblem>();
        var scan = FormulaTree.Walk(full, limits);
        FormulaTree.Check(scan, limits, problems);
        var metadata = MetadataReader.Read(full, limits, problems, out var declaredName);
        var config = ConfigReader.Read(full, limits, problems);
        var hooks = ReadHooks(scan, limits, problems);

        if (problems.Count > 0 || metadata is null)
            return new FormulaLoadOutcome(null, new FormulaValidationException(full, problems), declaredName);
        return new FormulaLoadOutcome(new Formula(full, metadata, config, hooks), null, declaredName);
    }

    /// <summary>
    /// Throws unless <paramref name="path"/> is a directory (a link to one will do): not found as
    /// <see cref="DirectoryNotFoundException"/>, unreadable as <see cref="RepositoryAccessException"/>. Directory.Exists
    /// cannot be used: it answers "no" for a directory it may not look at, which would send the user looking for a typo.
    /// </summary>
    internal static void RequireDirectory(string path, string what)
    {
        FileAttributes attributes;
        try
        {
            attributes = File.GetAttributes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DirectoryNotFoundException($"{what} {path} does not exist");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading(what, path, e);
        }
        if ((attributes & FileAttributes.Directory) == 0)
            throw new DirectoryNotFoundException($"{what} {path} is a file, not a directory");
    }

    /// <summary>The kind of <paramref name="path"/>; a failure to look is a <see cref="RepositoryAccessException"/> naming it.</summary>
    internal static FileKind KindOf(string path)
    {
        try
        {
            return FileKinds.Of(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("file", path, e);
        }
    }

    // Hooks come from the same walk that packing uses; links and fifos in hooks/ are reported by the tree check.
    private static List<string> ReadHooks(FormulaTreeScan scan, FormulaLimits limits, List<FormulaProblem> problems) =>
        ReadHooks(scan.Entries.Select(e => (e.RelativePath, e.Kind == FormulaTreeEntryKind.File, (Func<UnixFileMode>)(() => UnixModes.Get(e.FullPath)))),
            limits, problems);

    /// <summary>The hooks among a formula's entries (path, is a regular file, its mode): each executable, not too many.</summary>
    internal static List<string> ReadHooks(IEnumerable<(string RelativePath, bool IsFile, Func<UnixFileMode> Mode)> entries, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var hooks = new List<string>();
        var prefix = HooksDirectory + "/";
        foreach (var entry in entries)
        {
            if (entry.RelativePath == HooksDirectory && entry.IsFile)
                problems.Add(new FormulaProblem(HooksDirectory, "type", "hooks must be a directory of executables, not a file; move it aside and create hooks/"));
            if (!entry.IsFile || !entry.RelativePath.StartsWith(prefix, StringComparison.Ordinal)
                || entry.RelativePath.IndexOf('/', prefix.Length) >= 0)
                continue;
            var name = entry.RelativePath[prefix.Length..];
            if (UnixModes.IsExecutable(entry.Mode()))
                hooks.Add(name);
            else
                problems.Add(new FormulaProblem(entry.RelativePath, "mode",
                    $"hook is not executable; run 'chmod +x {entry.RelativePath}' or move it out of {HooksDirectory}/"));
        }
        if (hooks.Count > limits.MaxHooks)
            problems.Add(new FormulaProblem(HooksDirectory, "count",
                $"hooks/ holds {FormulaLimits.Count(hooks.Count)} executables, over the limit of {FormulaLimits.Count(limits.MaxHooks)}; move helpers out of hooks/"));
        hooks.Sort(StringComparer.Ordinal);
        return hooks;
    }

    /// <summary>A revision as written: a non-negative integer without sign, at most the limit.</summary>
    internal static RevisionText ParseRevision(string? text, FormulaLimits limits, out int revision)
    {
        revision = 0;
        var trimmed = text?.Trim() ?? "";
        if (trimmed.Length == 0 || !trimmed.All(char.IsAsciiDigit)) return RevisionText.NotAnInteger;
        var digits = trimmed.TrimStart('0');
        if (digits.Length > 10 || long.Parse(digits.Length == 0 ? "0" : digits, CultureInfo.InvariantCulture) > limits.MaxRevision)
            return RevisionText.TooHigh;
        revision = int.Parse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture);
        return RevisionText.Valid;
    }

    /// <summary>A formula name becomes a directory, a store key and the default service name, so it follows the service name rules.</summary>
    internal static string? NameProblem(string name, FormulaLimits limits)
    {
        if (name.Length > limits.MaxNameLength)
            return $"name '{Shown(name)}' is {name.Length} characters long, over the limit of {limits.MaxNameLength} for a formula name; choose a shorter name and rename the directory to match";
        if (!char.IsAsciiLetterLower(name[0]) || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
            return $"name '{Shown(name)}' may only hold lowercase letters, digits and '-', starting with a letter; rename the formula and its directory";
        return null;
    }

    /// <summary>User text quoted in a message: control characters escaped, long text cut.</summary>
    internal static string Shown(string text)
    {
        var cut = text.Length > 80 ? text[..80] + "…" : text;
        return string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}

internal enum RevisionText { Valid, NotAnInteger, TooHigh }

/// <summary>Result of inspecting a formula directory: either a formula or the validation error, plus the claimed name.</summary>
internal sealed record FormulaLoadOutcome(Formula? Formula, FormulaValidationException? Error, string? DeclaredName);

/// <summary>Validates metadata.yaml (and the legacy revision file) into <see cref="FormulaMetadata"/>.</summary>
internal static class MetadataReader
{
    private const string File = FormulaLoader.MetadataFile;

    public static FormulaMetadata? Read(string directory, FormulaLimits limits, List<FormulaProblem> problems, out string? declaredName)
    {
        var path = Path.Combine(directory, File);
        var root = ReadYaml(path, File, limits, problems, out var failed, out var missing);
        return FromYaml(root, failed, missing, Path.GetFileName(directory), () => LegacyRevision(directory, limits, problems), limits, problems, out declaredName);
    }

    /// <summary>The legacy revision file of a formula directory: (false, null) when there is none, (true, null) when it was refused.</summary>
    private static (bool Present, byte[]? Bytes) LegacyRevision(string directory, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var legacy = Path.Combine(directory, FormulaLoader.RevisionFile);
        if (FormulaLoader.KindOf(legacy) != FileKind.Regular) return (false, null);
        return (true, FormulaYaml.ReadBounded(legacy, FormulaLoader.RevisionFile, limits.MaxRevisionFileBytes, "the limit for the revision file", problems));
    }

    /// <summary>
    /// Validates a parsed metadata.yaml, wherever it came from (a directory, or a bundle being inspected).
    /// <paramref name="directoryName"/>, when given, is what the name must equal; <paramref name="legacyRevision"/>
    /// reads the legacy revision file when metadata.yaml has none.
    /// </summary>
    public static FormulaMetadata? FromYaml(YamlNode? root, bool failed, bool missing, string? directoryName,
        Func<(bool Present, byte[]? Bytes)> legacyRevision, FormulaLimits limits, List<FormulaProblem> problems, out string? declaredName)
    {
        declaredName = null;
        if (missing)
        {
            problems.Add(new FormulaProblem(File, "(file)", $"{File} is missing; create it with at least 'name:' and 'revision:'"));
            return null;
        }
        if (failed) return null;
        if (root is not YamlMappingNode map)
        {
            problems.Add(new FormulaProblem(File, "(document)",
                root is null ? $"{File} is empty; add 'name:' and 'revision:'" : $"{File} must be a mapping of fields, found {YamlDocument.Describe(root)}"));
            return null;
        }

        var start = problems.Count;
        var name = ReadName(map, directoryName, limits, problems);
        declaredName = name;
        var revision = ReadRevision(map, legacyRevision, limits, problems);
        var summary = ReadText(map, "summary", problems);
        var description = ReadText(map, "description", problems);
        var provides = ReadRelations(map, "provides", problems);
        var requires = ReadRelations(map, "requires", problems);
        var peers = ReadRelations(map, "peers", problems);

        if (problems.Count > start || name is null) return null;
        return new FormulaMetadata(name, revision, summary, description, provides, requires, peers);
    }

    /// <summary>
    /// Reads a formula YAML file that may be absent. Links and fifos are left alone: the tree check reports them, and
    /// reading one could follow it anywhere or block.
    /// </summary>
    internal static YamlNode? ReadYaml(string path, string file, FormulaLimits limits, List<FormulaProblem> problems, out bool failed, out bool missing)
    {
        failed = true;
        missing = false;
        switch (FormulaLoader.KindOf(path))
        {
            case FileKind.Missing:
                missing = true;
                return null;
            case FileKind.Regular:
                return FormulaYaml.Read(path, file, limits, problems, out failed);
            case FileKind.Directory:
                problems.Add(new FormulaProblem(file, "type", $"{file} must be a file, not a directory; move the directory aside"));
                return null;
            default:
                return null;
        }
    }

    private static string? ReadName(YamlMappingNode map, string? directoryName, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var node = YamlDocument.Get(map, "name");
        if (YamlDocument.IsNull(node) || node is not YamlScalarNode { Value: { Length: > 0 } name } || string.IsNullOrWhiteSpace(name))
        {
            problems.Add(new FormulaProblem(File, "name", "name is missing; add 'name: <formula name>' matching the directory name"));
            return null;
        }
        if (FormulaLoader.NameProblem(name, limits) is { } invalid)
            problems.Add(new FormulaProblem(File, "name", invalid));
        else if (directoryName is not null && name != directoryName)
            problems.Add(new FormulaProblem(File, "name", $"name '{name}' differs from the directory name '{FormulaLoader.Shown(directoryName)}'; rename one to match"));
        return name;
    }

    // metadata.yaml wins over the legacy revision file when both are present.
    private static int ReadRevision(YamlMappingNode map, Func<(bool Present, byte[]? Bytes)> legacyRevision, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var node = YamlDocument.Get(map, "revision");
        if (!YamlDocument.IsNull(node))
        {
            var text = (node as YamlScalarNode)?.Value;
            switch (FormulaLoader.ParseRevision(text, limits, out var fromYaml))
            {
                case RevisionText.Valid:
                    return fromYaml;
                case RevisionText.TooHigh:
                    problems.Add(new FormulaProblem(File, "revision", TooHigh(text!, limits)));
                    return 0;
                default:
                    problems.Add(new FormulaProblem(File, "revision",
                        $"revision '{FormulaLoader.Shown(Show(node!))}' is not a non-negative integer; write e.g. 'revision: 1'"));
                    return 0;
            }
        }

        var (present, bytes) = legacyRevision();
        if (present)
        {
            if (bytes is null) return 0;
            var text = FormulaYaml.Decode(bytes, FormulaLoader.RevisionFile, problems);
            if (text is null) return 0;
            switch (FormulaLoader.ParseRevision(text, limits, out var fromFile))
            {
                case RevisionText.Valid:
                    return fromFile;
                case RevisionText.TooHigh:
                    problems.Add(new FormulaProblem(FormulaLoader.RevisionFile, "revision", TooHigh(text.Trim(), limits)));
                    return 0;
                default:
                    problems.Add(new FormulaProblem(FormulaLoader.RevisionFile, "revision",
                        $"revision file holds '{FormulaLoader.Shown(text.Trim())}', not a non-negative integer; write a single number such as 1"));
                    return 0;
            }
        }

        problems.Add(new FormulaProblem(File, "revision", "revision is missing; add 'revision: <n>' (a non-negative integer)"));
        return 0;
    }

    private static string TooHigh(string text, FormulaLimits limits) =>
        $"revision {FormulaLoader.Shown(text.Trim())} is over the limit of {FormulaLimits.Count(limits.MaxRevision)}; use a smaller revision";

    private static string ReadText(YamlMappingNode map, string field, List<FormulaProblem> problems)
    {
        var node = YamlDocument.Get(map, field);
        if (YamlDocument.IsNull(node)) return "";
        if (node is YamlScalarNode scalar) return scalar.Value ?? "";
        problems.Add(new FormulaProblem(File, field, $"{field} must be text, found {YamlDocument.Describe(node!)}"));
        return "";
    }

    // A relation may be written as 'db: mysql' or as 'db: {interface: mysql, limit: 1, optional: true}'; only the interface matters here.
    private static IReadOnlyDictionary<string, string> ReadRelations(YamlMappingNode map, string field, List<FormulaProblem> problems)
    {
        var relations = new Dictionary<string, string>(StringComparer.Ordinal);
        var node = YamlDocument.Get(map, field);
        if (YamlDocument.IsNull(node)) return relations;
        if (node is not YamlMappingNode entries)
        {
            problems.Add(new FormulaProblem(File, field, $"{field} must map relation names to interfaces, found {YamlDocument.Describe(node!)}"));
            return relations;
        }

        foreach (var (keyNode, valueNode) in entries.Children)
        {
            var relation = (keyNode as YamlScalarNode)?.Value ?? Show(keyNode);
            var iface = valueNode switch
            {
                YamlScalarNode s when !YamlDocument.IsNull(s) => s.Value,
                YamlMappingNode m when YamlDocument.Get(m, "interface") is YamlScalarNode i && !YamlDocument.IsNull(i) => i.Value,
                _ => null,
            };
            if (string.IsNullOrWhiteSpace(iface))
                problems.Add(new FormulaProblem(File, $"{field}.{relation}",
                    $"relation '{relation}' has no interface; write '{relation}: <interface>' or give it an 'interface:' key"));
            else
                relations[relation] = iface;
        }
        return relations;
    }

    private static string Show(YamlNode node) => node is YamlScalarNode s ? s.Value ?? "" : YamlDocument.Describe(node);
}

/// <summary>Validates config.yaml into the list of options.</summary>
internal static class ConfigReader
{
    private const string File = FormulaLoader.ConfigFile;
    private static readonly string[] KnownTypes = ["string", "int", "float", "boolean"];

    public static List<ConfigOption> Read(string directory, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var root = MetadataReader.ReadYaml(Path.Combine(directory, File), File, limits, problems, out var failed, out _);
        return FromYaml(root, failed, limits, problems);
    }

    /// <summary>Validates a parsed config.yaml, wherever it came from; an absent one (null) declares no options.</summary>
    public static List<ConfigOption> FromYaml(YamlNode? root, bool failed, FormulaLimits limits, List<FormulaProblem> problems)
    {
        var options = new List<ConfigOption>();
        if (failed || root is null) return options;
        if (root is not YamlMappingNode map)
        {
            problems.Add(new FormulaProblem(File, "(document)", $"{File} must be a mapping with an 'options:' key, found {YamlDocument.Describe(root)}"));
            return options;
        }

        var node = YamlDocument.Get(map, "options");
        if (YamlDocument.IsNull(node)) return options;
        if (node is not YamlMappingNode entries)
        {
            problems.Add(new FormulaProblem(File, "options", $"options must map option names to settings, found {YamlDocument.Describe(node!)}"));
            return options;
        }
        if (entries.Children.Count > limits.MaxConfigOptions)
        {
            problems.Add(new FormulaProblem(File, "options",
                $"{File} declares {FormulaLimits.Count(entries.Children.Count)} options, over the limit of {FormulaLimits.Count(limits.MaxConfigOptions)}; remove the ones the formula does not use"));
            return options;
        }

        foreach (var (keyNode, valueNode) in entries.Children)
        {
            var name = (keyNode as YamlScalarNode)?.Value ?? "";
            var option = ReadOption(name, valueNode, problems);
            if (option is not null) options.Add(option);
        }
        return options;
    }

    private static ConfigOption? ReadOption(string name, YamlNode node, List<FormulaProblem> problems)
    {
        var field = $"options.{name}";
        if (node is not YamlMappingNode settings)
        {
            problems.Add(new FormulaProblem(File, field, $"option '{name}' must be a mapping with type, default and description"));
            return null;
        }

        // Like its ancestors, an option without a type is a string.
        var typeNode = YamlDocument.Get(settings, "type");
        var type = YamlDocument.IsNull(typeNode) ? "string" : (typeNode as YamlScalarNode)?.Value ?? "";
        if (!KnownTypes.Contains(type, StringComparer.Ordinal))
        {
            problems.Add(new FormulaProblem(File, field + ".type",
                $"option '{name}' has unknown type '{type}'; use one of {string.Join(", ", KnownTypes)}"));
            return null;
        }

        var defaultNode = YamlDocument.Get(settings, "default");
        string? defaultValue = null;
        if (!YamlDocument.IsNull(defaultNode))
        {
            defaultValue = (defaultNode as YamlScalarNode)?.Value;
            if (defaultValue is null || !Fits(type, defaultValue))
            {
                problems.Add(new FormulaProblem(File, field + ".default",
                    $"default of option '{name}' is not a valid {type}; fix the default or the type"));
                return null;
            }
        }

        var descriptionNode = YamlDocument.Get(settings, "description");
        var description = YamlDocument.IsNull(descriptionNode) ? null : (descriptionNode as YamlScalarNode)?.Value;
        return new ConfigOption(name, type, defaultValue, description);
    }

    private static bool Fits(string type, string value) => type switch
    {
        "int" => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
        "float" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
        "boolean" => value is "true" or "false" or "True" or "False" or "TRUE" or "FALSE",
        _ => true,
    };
}
