namespace Ensemble.Formulas;

/// <summary>One file-system entry inside a formula directory, named by its '/'-separated relative path.</summary>
internal sealed record FormulaTreeEntry(string RelativePath, string FullPath, FormulaTreeEntryKind Kind)
{
    public string ArchiveName => Kind == FormulaTreeEntryKind.Directory ? RelativePath + "/" : RelativePath;
}

internal enum FormulaTreeEntryKind { Directory, File, Link }

/// <summary>Walks a formula directory the same way for validation and packing, so what loads is what packs.</summary>
internal static class FormulaTree
{
    /// <summary>Version-control metadata is never part of a formula.</summary>
    public const string SkippedDirectory = ".git";

    /// <summary>
    /// All entries below <paramref name="root"/> (not the root itself), sorted ordinally by their archive name:
    /// the relative path, with a trailing '/' for directories, so a parent always precedes its contents.
    /// </summary>
    public static List<FormulaTreeEntry> Walk(string root)
    {
        var entries = new List<FormulaTreeEntry>();
        Collect(root, "", entries);
        entries.Sort((a, b) => string.CompareOrdinal(a.ArchiveName, b.ArchiveName));
        return entries;
    }

    private static void Collect(string directory, string prefix, List<FormulaTreeEntry> entries)
    {
        foreach (var info in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            var relative = prefix + info.Name;
            // A link is never followed: it could point anywhere, or loop.
            if (info.LinkTarget is not null)
            {
                entries.Add(new FormulaTreeEntry(relative, info.FullName, FormulaTreeEntryKind.Link));
            }
            else if (info is DirectoryInfo)
            {
                if (info.Name == SkippedDirectory) continue;
                entries.Add(new FormulaTreeEntry(relative, info.FullName, FormulaTreeEntryKind.Directory));
                Collect(info.FullName, relative + "/", entries);
            }
            else
            {
                entries.Add(new FormulaTreeEntry(relative, info.FullName, FormulaTreeEntryKind.File));
            }
        }
    }
}
