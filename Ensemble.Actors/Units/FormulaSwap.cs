using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>
/// Replaces a unit's formula directory atomically: unpack beside it, rename the old one away, rename the
/// new one in, delete the old. Files only the old revision had are gone; the data directory is never touched.
/// Safe to redo after a crash at any point.
/// </summary>
public static class FormulaSwap
{
    /// <summary>Makes the bundle file at <paramref name="bundlePath"/> (checked against <paramref name="sha256"/>) the unit's formula directory.</summary>
    public static void Replace(UnitPaths paths, string bundlePath, string sha256, FormulaLimits? limits = null)
    {
        var stagedMarker = paths.StagingDirectory + ".sha256";
        // A crash between the two renames: the staging directory is complete, finish the swap —
        // but only if it holds the bundle asked for now.
        if (!Directory.Exists(paths.FormulaDirectory) && Directory.Exists(paths.RetiredDirectory) && Directory.Exists(paths.StagingDirectory)
            && File.Exists(stagedMarker) && File.ReadAllText(stagedMarker) == sha256)
        {
            Directory.Move(paths.StagingDirectory, paths.FormulaDirectory);
            Directory.Delete(paths.RetiredDirectory, recursive: true);
            File.Delete(stagedMarker);
            return;
        }

        DeleteIfPresent(paths.StagingDirectory);
        Directory.CreateDirectory(paths.Root);
        BundleExtractor.Extract(bundlePath, sha256, paths.StagingDirectory, limits);
        File.WriteAllText(stagedMarker, sha256);

        if (Directory.Exists(paths.FormulaDirectory))
        {
            DeleteIfPresent(paths.RetiredDirectory);
            Directory.Move(paths.FormulaDirectory, paths.RetiredDirectory);
        }
        Directory.Move(paths.StagingDirectory, paths.FormulaDirectory);
        DeleteIfPresent(paths.RetiredDirectory);
        File.Delete(stagedMarker);
    }

    private static void DeleteIfPresent(string directory)
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
    }
}
