using System.Text;

namespace Ensemble.Formulas;

/// <summary>One file-system entry inside a formula directory, named by its '/'-separated relative path.</summary>
internal sealed record FormulaTreeEntry(string RelativePath, string FullPath, FormulaTreeEntryKind Kind, long Length)
{
    public string ArchiveName => Kind == FormulaTreeEntryKind.Directory ? RelativePath + "/" : RelativePath;

    public int Depth => RelativePath.Count(c => c == '/') + 1;
}

internal enum FormulaTreeEntryKind { Directory, File, Link, Special }

/// <summary>What a walk found: the entries (at most one more than the cap) and whether it stopped early.</summary>
internal sealed record FormulaTreeScan(List<FormulaTreeEntry> Entries, bool TooManyEntries);

/// <summary>
/// Walks a formula directory the same way for validation and packing, so what loads is what packs, and checks the
/// tree against <see cref="FormulaLimits"/> from the file system's sizes alone, before any file is read.
/// </summary>
internal static class FormulaTree
{
    /// <summary>Version-control metadata is never part of a formula.</summary>
    public const string SkippedDirectory = ".git";

    /// <summary>Per-entry problems beyond this many are summed up in one line, so a hostile tree cannot flood the message.</summary>
    private const int MaxEntryProblems = 20;

    /// <summary>
    /// The entries below <paramref name="root"/> (not the root itself), sorted ordinally by their archive name: the
    /// relative path, with a trailing '/' for directories, so a parent always precedes its contents. Stops after one
    /// entry more than the cap, and does not descend below the depth cap.
    /// </summary>
    /// <exception cref="RepositoryAccessException">A directory or entry cannot be read.</exception>
    public static FormulaTreeScan Walk(string root, FormulaLimits limits)
    {
        var entries = new List<FormulaTreeEntry>();
        var complete = Collect(root, "", 1, limits, entries);
        entries.Sort((a, b) => string.CompareOrdinal(a.ArchiveName, b.ArchiveName));
        return new FormulaTreeScan(entries, !complete);
    }

    private static bool Collect(string directory, string prefix, int depth, FormulaLimits limits, List<FormulaTreeEntry> entries)
    {
        // Names only: each entry is then looked at by itself, so a failure names the entry rather than its directory.
        List<string> paths;
        try
        {
            paths = Directory.EnumerateFileSystemEntries(directory).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading(prefix.Length == 0 ? "formula directory" : "directory", directory, e);
        }

        foreach (var path in paths)
        {
            if (entries.Count > limits.MaxEntries) return false;
            var name = Path.GetFileName(path);
            var entry = Classify(path, prefix + name);
            if (name == SkippedDirectory && entry.Kind == FormulaTreeEntryKind.Directory) continue;
            entries.Add(entry);
            // One level past the cap is listed so the check can name it; nothing deeper is walked, a hostile tree may be deeper than the stack.
            if (entry.Kind == FormulaTreeEntryKind.Directory && depth <= limits.MaxPathDepth
                && !Collect(path, entry.RelativePath + "/", depth + 1, limits, entries))
                return false;
        }
        return entries.Count <= limits.MaxEntries;
    }

    // A link is never followed: it could point anywhere, or loop. Only regular files are ever opened: a fifo would block.
    private static FormulaTreeEntry Classify(string path, string relative)
    {
        try
        {
            var kind = FileKinds.Of(path) switch
            {
                FileKind.Directory => FormulaTreeEntryKind.Directory,
                FileKind.Regular => FormulaTreeEntryKind.File,
                FileKind.Link => FormulaTreeEntryKind.Link,
                FileKind.Missing => throw new FileNotFoundException($"{path} disappeared while the formula was read", path),
                _ => FormulaTreeEntryKind.Special,
            };
            var length = kind == FormulaTreeEntryKind.File ? new FileInfo(path).Length : 0;
            return new FormulaTreeEntry(relative, path, kind, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("file", path, e);
        }
    }

    /// <summary>Adds a problem for every way the tree breaks the limits or holds what a formula may not.</summary>
    public static void Check(FormulaTreeScan scan, FormulaLimits limits, ICollection<FormulaProblem> problems)
    {
        if (scan.TooManyEntries)
            problems.Add(new FormulaProblem("(formula)", "entries",
                $"the formula holds more than {FormulaLimits.Count(limits.MaxEntries)} files and directories, the limit for a formula; remove what its hooks do not need"));

        var entryProblems = 0;
        var skipped = 0;
        long total = 0;
        foreach (var entry in scan.Entries)
        {
            if (entry.Kind == FormulaTreeEntryKind.File) total += entry.Length;
            foreach (var problem in ProblemsOf(entry, limits))
            {
                if (++entryProblems <= MaxEntryProblems) problems.Add(problem);
                else skipped++;
            }
        }
        if (skipped > 0)
            problems.Add(new FormulaProblem("(formula)", "entries", $"{FormulaLimits.Count(skipped)} more problems like the ones above; fix those first"));

        if (total > limits.MaxTotalBytes)
            problems.Add(new FormulaProblem("(formula)", "size",
                $"the formula's files add up to {FormulaLimits.Size(total, limits.MaxTotalBytes)}, over the {FormulaLimits.Size(limits.MaxTotalBytes)} limit for a formula; keep large files out of it and have a hook fetch them"));
    }

    private static IEnumerable<FormulaProblem> ProblemsOf(FormulaTreeEntry entry, FormulaLimits limits)
    {
        var path = entry.RelativePath;
        switch (entry.Kind)
        {
            case FormulaTreeEntryKind.Link:
                yield return new FormulaProblem(path, "type",
                    "symbolic links are not supported in formulas; replace the link with a copy of its target");
                break;
            case FormulaTreeEntryKind.Special:
                yield return new FormulaProblem(path, "type",
                    "fifos, sockets and devices are not supported in formulas; remove it, or have a hook create it");
                break;
            case FormulaTreeEntryKind.File when entry.Length > limits.MaxFileBytes:
                yield return FileTooLarge(path, entry.Length, limits);
                break;
        }
        foreach (var problem in PathProblems(path, limits, entry.Kind == FormulaTreeEntryKind.Directory)) yield return problem;
    }

    internal static FormulaProblem FileTooLarge(string path, long length, FormulaLimits limits) =>
        new(path, "size", $"{FormulaLimits.Size(length, limits.MaxFileBytes)} is over the {FormulaLimits.Size(limits.MaxFileBytes)} limit for one file in a formula; keep large files out of the formula and have a hook fetch them");

    /// <summary>
    /// The name rules shared with unpacking: depth, the length of each name, and that the archive name (with a
    /// trailing '/' for a directory) fits the ustar fields: at most 155 bytes of directories, a '/', and at most
    /// 100 bytes more, split at some '/'.
    /// </summary>
    internal static IEnumerable<FormulaProblem> PathProblems(string path, FormulaLimits limits, bool isDirectory = false)
    {
        var slash = path.LastIndexOf('/');
        var depth = path.Count(c => c == '/') + 1;
        if (depth > limits.MaxPathDepth)
            yield return new FormulaProblem(path, "depth",
                $"it is {depth} levels deep, over the limit of {limits.MaxPathDepth} levels for a formula; move it closer to the formula's top directory");
        var name = Encoding.UTF8.GetByteCount(path.AsSpan(slash + 1));
        if (name > limits.MaxNameBytes)
        {
            yield return new FormulaProblem(path, "name",
                $"its name is {name} bytes long, over the limit of {limits.MaxNameBytes} bytes for a name in a formula; shorten it");
            yield break;
        }
        var archived = Encoding.UTF8.GetBytes(isDirectory ? path + "/" : path);
        if (!FitsUstar(archived, limits))
            yield return new FormulaProblem(path, "path",
                $"its path is {archived.Length} bytes long and cannot be split into at most {limits.MaxDirectoryPathBytes} bytes of directories and a name of at most {limits.MaxNameBytes} bytes, the limits for a path in a formula; move it closer to the formula's top directory or shorten the directory names");
    }

    private static bool FitsUstar(byte[] name, FormulaLimits limits)
    {
        if (name.Length <= limits.MaxNameBytes) return true;
        for (var i = 0; i < name.Length && i <= limits.MaxDirectoryPathBytes; i++)
            if (name[i] == (byte)'/' && name.Length - i - 1 <= limits.MaxNameBytes) return true;
        return false;
    }
}
