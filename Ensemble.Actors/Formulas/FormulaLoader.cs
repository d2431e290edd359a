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
    public static Formula Load(string directory)
    {
        var outcome = Inspect(directory);
        return outcome.Formula ?? throw outcome.Error!;
    }

    /// <summary>Loads without throwing for validation problems, and says which name the directory claims even when invalid.</summary>
    internal static FormulaLoadOutcome Inspect(string directory)
    {
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full))
            throw new DirectoryNotFoundException($"formula directory {full} does not exist");

        var problems = new List<FormulaProblem>();
        var metadata = MetadataReader.Read(full, problems, out var declaredName);
        var config = ConfigReader.Read(full, problems);
        var hooks = ReadHooks(full, problems);
        CheckTree(full, problems);

        if (problems.Count > 0 || metadata is null)
            return new FormulaLoadOutcome(null, new FormulaValidationException(full, problems), declaredName);
        return new FormulaLoadOutcome(new Formula(full, metadata, config, hooks), null, declaredName);
    }

    private static List<string> ReadHooks(string directory, List<FormulaProblem> problems)
    {
        var hooks = new List<string>();
        var hooksPath = Path.Combine(directory, HooksDirectory);
        if (File.Exists(hooksPath))
        {
            problems.Add(new FormulaProblem(HooksDirectory, "type", "hooks must be a directory of executables, not a file; move it aside and create hooks/"));
            return hooks;
        }
        if (!System.IO.Directory.Exists(hooksPath)) return hooks;

        foreach (var file in new DirectoryInfo(hooksPath).EnumerateFiles())
        {
            // Links are reported by CheckTree; they cannot be hooks because they are not packed.
            if (file.LinkTarget is not null) continue;
            if (UnixModes.IsExecutable(UnixModes.Get(file.FullName)))
                hooks.Add(file.Name);
            else
                problems.Add(new FormulaProblem($"{HooksDirectory}/{file.Name}", "mode",
                    $"hook is not executable; run 'chmod +x {HooksDirectory}/{file.Name}' or move it out of {HooksDirectory}/"));
        }
        hooks.Sort(StringComparer.Ordinal);
        return hooks;
    }

    // Links are refused here rather than silently dropped by the packer, so what the author sees is what deploys.
    private static void CheckTree(string directory, List<FormulaProblem> problems)
    {
        foreach (var entry in FormulaTree.Walk(directory))
        {
            if (entry.Kind == FormulaTreeEntryKind.Link)
                problems.Add(new FormulaProblem(entry.RelativePath, "type",
                    "symbolic links are not supported in formulas; replace the link with a copy of its target"));
        }
    }

    internal static bool TryParseRevision(string? text, out int revision) =>
        int.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out revision);
}

/// <summary>Result of inspecting a formula directory: either a formula or the validation error, plus the claimed name.</summary>
internal sealed record FormulaLoadOutcome(Formula? Formula, FormulaValidationException? Error, string? DeclaredName);

/// <summary>Validates metadata.yaml (and the legacy revision file) into <see cref="FormulaMetadata"/>.</summary>
internal static class MetadataReader
{
    private const string File = FormulaLoader.MetadataFile;

    public static FormulaMetadata? Read(string directory, List<FormulaProblem> problems, out string? declaredName)
    {
        declaredName = null;
        var path = Path.Combine(directory, File);
        if (!System.IO.File.Exists(path))
        {
            problems.Add(new FormulaProblem(File, "(file)", $"{File} is missing; create it with at least 'name:' and 'revision:'"));
            return null;
        }

        var root = YamlDocument.Parse(System.IO.File.ReadAllText(path), File, problems, out var failed);
        if (failed) return null;
        if (root is not YamlMappingNode map)
        {
            problems.Add(new FormulaProblem(File, "(document)",
                root is null ? $"{File} is empty; add 'name:' and 'revision:'" : $"{File} must be a mapping of fields, found {YamlDocument.Describe(root)}"));
            return null;
        }

        var start = problems.Count;
        var name = ReadName(map, Path.GetFileName(directory), problems);
        declaredName = name;
        var revision = ReadRevision(map, directory, problems);
        var summary = ReadText(map, "summary", problems);
        var description = ReadText(map, "description", problems);
        var provides = ReadRelations(map, "provides", problems);
        var requires = ReadRelations(map, "requires", problems);
        var peers = ReadRelations(map, "peers", problems);

        if (problems.Count > start || name is null) return null;
        return new FormulaMetadata(name, revision, summary, description, provides, requires, peers);
    }

    private static string? ReadName(YamlMappingNode map, string directoryName, List<FormulaProblem> problems)
    {
        var node = YamlDocument.Get(map, "name");
        if (YamlDocument.IsNull(node) || node is not YamlScalarNode { Value: { Length: > 0 } name } || string.IsNullOrWhiteSpace(name))
        {
            problems.Add(new FormulaProblem(File, "name", "name is missing; add 'name: <formula name>' matching the directory name"));
            return null;
        }
        if (name != directoryName)
            problems.Add(new FormulaProblem(File, "name", $"name '{name}' differs from the directory name '{directoryName}'; rename one to match"));
        return name;
    }

    // metadata.yaml wins over the legacy revision file when both are present.
    private static int ReadRevision(YamlMappingNode map, string directory, List<FormulaProblem> problems)
    {
        var node = YamlDocument.Get(map, "revision");
        if (!YamlDocument.IsNull(node))
        {
            if (node is YamlScalarNode scalar && FormulaLoader.TryParseRevision(scalar.Value, out var fromYaml)) return fromYaml;
            problems.Add(new FormulaProblem(File, "revision",
                $"revision '{Show(node!)}' is not a non-negative integer; write e.g. 'revision: 1'"));
            return 0;
        }

        var legacy = Path.Combine(directory, FormulaLoader.RevisionFile);
        if (System.IO.File.Exists(legacy))
        {
            var text = System.IO.File.ReadAllText(legacy);
            if (FormulaLoader.TryParseRevision(text, out var fromFile)) return fromFile;
            problems.Add(new FormulaProblem(FormulaLoader.RevisionFile, "revision",
                $"revision file holds '{text.Trim()}', not a non-negative integer; write a single number such as 1"));
            return 0;
        }

        problems.Add(new FormulaProblem(File, "revision", "revision is missing; add 'revision: <n>' (a non-negative integer)"));
        return 0;
    }

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

    public static List<ConfigOption> Read(string directory, List<FormulaProblem> problems)
    {
        var options = new List<ConfigOption>();
        var path = Path.Combine(directory, File);
        if (!System.IO.File.Exists(path)) return options;

        var root = YamlDocument.Parse(System.IO.File.ReadAllText(path), File, problems, out var failed);
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
