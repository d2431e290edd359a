using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>A directory of formulas laid out as <c>root/&lt;name&gt;</c> or <c>root/&lt;series&gt;/&lt;name&gt;</c>.</summary>
public sealed class LocalRepository(string root, FormulaLimits? limits = null)
{
    /// <summary>The repository directory as a full path.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The caps every formula read from here is held to, also when it is packed.</summary>
    public FormulaLimits Limits { get; } = limits ?? FormulaLimits.Default;

    /// <summary>Every valid revision of <paramref name="name"/>, highest revision first (ties by directory path).</summary>
    /// <exception cref="FormulaValidationException">A directory of that name, or claiming that name, is invalid.</exception>
    /// <exception cref="DirectoryNotFoundException">The repository directory does not exist.</exception>
    /// <exception cref="RepositoryAccessException">A directory or file that must be read cannot be, or the repository is too large to scan.</exception>
    public IReadOnlyList<Formula> FindAll(string name)
    {
        var found = new List<Formula>();
        foreach (var directory in CandidateDirectories())
        {
            // Only the wanted formula is validated in full; for the others the name they claim is enough.
            if (Path.GetFileName(directory) != name && DeclaredName(directory) != name) continue;
            var outcome = FormulaLoader.Inspect(directory, Limits);
            if (outcome.Formula is { } formula)
            {
                if (formula.Metadata.Name == name) found.Add(formula);
            }
            else
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

    // The name a formula directory's metadata.yaml claims, read under the same caps; null when it claims none.
    private string? DeclaredName(string directory)
    {
        var problems = new List<FormulaProblem>();
        var root = MetadataReader.ReadYaml(Path.Combine(directory, FormulaLoader.MetadataFile), FormulaLoader.MetadataFile, Limits, problems, out _, out _);
        return root is YamlMappingNode map && YamlDocument.Get(map, "name") is YamlScalarNode { Value: { } claimed } ? claimed : null;
    }

    // A directory holding metadata.yaml is a formula; any other directory is a series directory, searched one level deep.
    private List<string> CandidateDirectories()
    {
        try
        {
            FormulaLoader.RequireDirectory(Root, "repository directory");
        }
        catch (DirectoryNotFoundException e)
        {
            throw new DirectoryNotFoundException($"{e.Message}; pass an existing directory with --repository");
        }

        var examined = 0;
        var candidates = new List<string>();
        foreach (var top in Sorted(Root, ref examined))
        {
            if (IsFormula(top))
            {
                candidates.Add(top);
                continue;
            }
            foreach (var inner in Sorted(top, ref examined))
                if (IsFormula(inner)) candidates.Add(inner);
        }
        return candidates;
    }

    // File.Exists would answer "no" for a directory it may not look into, and the formula in it would be skipped silently.
    // Looking up a name fails for want of search permission on the directory, never for the file's own bits: name the directory.
    private static bool IsFormula(string directory)
    {
        try
        {
            return FileKinds.Of(Path.Combine(directory, FormulaLoader.MetadataFile)) != FileKind.Missing;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("directory", directory, e);
        }
    }

    private List<string> Sorted(string directory, ref int examined)
    {
        var directories = new List<string>();
        try
        {
            foreach (var found in Directory.EnumerateDirectories(directory))
            {
                if (Path.GetFileName(found).StartsWith('.')) continue;
                if (++examined > Limits.MaxRepositoryDirectories)
                    throw new RepositoryTooLargeException(
                        $"repository {Root} holds more than {FormulaLimits.Count(Limits.MaxRepositoryDirectories)} directories to examine, the limit for a repository; point --repository at a directory holding only formulas and their series directories");
                directories.Add(found);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not RepositoryAccessException)
        {
            throw RepositoryAccessException.Reading(directory == Root ? "repository directory" : "directory", directory, e);
        }
        directories.Sort(StringComparer.Ordinal);
        return directories;
    }
}
