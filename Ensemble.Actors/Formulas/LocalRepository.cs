namespace Ensemble.Formulas;

/// <summary>A directory of formulas laid out as <c>root/&lt;name&gt;</c> or <c>root/&lt;series&gt;/&lt;name&gt;</c>.</summary>
public sealed class LocalRepository(string root)
{
    /// <summary>The repository directory as a full path.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>Every valid revision of <paramref name="name"/>, highest revision first (ties by directory path).</summary>
    /// <exception cref="FormulaValidationException">A directory of that name, or claiming that name, is invalid.</exception>
    public IReadOnlyList<Formula> FindAll(string name)
    {
        var found = new List<Formula>();
        foreach (var directory in CandidateDirectories())
        {
            var outcome = FormulaLoader.Inspect(directory);
            if (outcome.Formula is { } formula)
            {
                if (formula.Metadata.Name == name) found.Add(formula);
            }
            else if (Path.GetFileName(directory) == name || outcome.DeclaredName == name)
            {
                // Hiding a broken copy of the wanted formula would deploy an older revision without saying why.
                throw outcome.Error!;
            }
        }
        found.Sort((a, b) => a.Metadata.Revision != b.Metadata.Revision
            ? b.Metadata.Revision.CompareTo(a.Metadata.Revision)
            : string.CompareOrdinal(a.Directory, b.Directory));
        return found;
    }

    /// <summary>The highest revision of <paramref name="name"/>, or null when the repository has none.</summary>
    public Formula? FindLatest(string name) => FindAll(name).FirstOrDefault();

    /// <summary>That exact revision of <paramref name="name"/>, or null.</summary>
    public Formula? Find(string name, int revision) => FindAll(name).FirstOrDefault(f => f.Metadata.Revision == revision);

    // A directory holding metadata.yaml is a formula; any other directory is a series directory, searched one level deep.
    private List<string> CandidateDirectories()
    {
        if (!Directory.Exists(Root))
            throw new DirectoryNotFoundException($"repository directory {Root} does not exist; pass an existing directory with --repository");

        var candidates = new List<string>();
        foreach (var top in Sorted(Root))
        {
            if (IsFormula(top))
            {
                candidates.Add(top);
                continue;
            }
            candidates.AddRange(Sorted(top).Where(IsFormula));
        }
        return candidates;
    }

    private static bool IsFormula(string directory) => File.Exists(Path.Combine(directory, FormulaLoader.MetadataFile));

    private static IEnumerable<string> Sorted(string directory) =>
        Directory.EnumerateDirectories(directory)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal);
}
