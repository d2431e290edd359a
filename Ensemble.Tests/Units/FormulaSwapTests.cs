using Ensemble.Formulas;
using Ensemble.Tests.Support;
using Ensemble.Units;
using Xunit;

namespace Ensemble.Tests.Units;

public sealed class FormulaSwapTests : IDisposable
{
    private readonly ScratchDirectory scratch = new("ensemble-swap");
    private readonly UnitPaths paths;
    private readonly FormulaBundle rev1;
    private readonly FormulaBundle rev2;

    public FormulaSwapTests()
    {
        paths = UnitPaths.For(scratch.Combine("units"), "mysql/0");
        rev1 = Bundle(1, new Dictionary<string, string> { ["old-only.txt"] = "only in revision 1", ["shared/config"] = "v1" });
        rev2 = Bundle(2, new Dictionary<string, string> { ["new-only.txt"] = "only in revision 2", ["shared/config"] = "v2" });
    }

    public void Dispose() => scratch.Dispose();

    private FormulaBundle Bundle(int revision, IReadOnlyDictionary<string, string> extra)
    {
        var dir = TestFormulas.Write(scratch.Combine($"repo{revision}"), "mysql", revision, extraFiles: extra);
        return FormulaPacker.Pack(FormulaLoader.Load(dir));
    }

    /// <summary>Relative path → content of every file under <paramref name="root"/>.</summary>
    private static SortedDictionary<string, string> Tree(string root) =>
        new(Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllText), StringComparer.Ordinal);

    private SortedDictionary<string, string> Extracted(FormulaBundle bundle)
    {
        var target = scratch.Combine("expected-" + bundle.Id.Revision);
        if (!Directory.Exists(target)) BundleExtractor.Extract(bundle.Path, bundle.Sha256, target);
        return Tree(target);
    }

    private void WriteData()
    {
        Directory.CreateDirectory(Path.Combine(paths.DataDirectory, "db"));
        File.WriteAllText(Path.Combine(paths.DataDirectory, "db", "table"), "precious rows");
        File.WriteAllText(Path.Combine(paths.DataDirectory, "old-only.txt"), "data that shares a name with a formula file");
    }

    private void AssertDataUntouched() => Assert.Equal(
        new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Path.Combine("db", "table")] = "precious rows",
            ["old-only.txt"] = "data that shares a name with a formula file",
        },
        Tree(paths.DataDirectory));

    private void AssertNoLeftovers()
    {
        Assert.False(Directory.Exists(paths.StagingDirectory), "formula.new left behind");
        Assert.False(Directory.Exists(paths.RetiredDirectory), "formula.old left behind");
    }

    [Fact]
    public void First_install_unpacks_into_the_formula_directory()
    {
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);

        Assert.Equal(Extracted(rev1), Tree(paths.FormulaDirectory));
        Assert.Contains("revision: 1", File.ReadAllText(Path.Combine(paths.FormulaDirectory, "metadata.yaml")));
        AssertNoLeftovers();
    }

    [Fact]
    public void Replace_swaps_the_revision_drops_stale_files_and_leaves_the_data_directory_alone()
    {
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);
        WriteData();
        Assert.True(File.Exists(Path.Combine(paths.FormulaDirectory, "old-only.txt")));

        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);

        var tree = Tree(paths.FormulaDirectory);
        Assert.Equal(Extracted(rev2), tree);
        Assert.False(File.Exists(Path.Combine(paths.FormulaDirectory, "old-only.txt")));
        Assert.Equal("only in revision 2", tree["new-only.txt"]);
        Assert.Equal("v2", tree[Path.Combine("shared", "config")]);
        Assert.True(File.GetUnixFileMode(Path.Combine(paths.FormulaDirectory, "hooks", "install")).HasFlag(UnixFileMode.UserExecute));
        AssertDataUntouched();
        AssertNoLeftovers();
    }

    [Fact]
    public void A_crash_between_the_two_renames_is_finished_by_replace()
    {
        // Crashed after formula → formula.old and before formula.new → formula.
        WriteData();
        Directory.CreateDirectory(paths.Root);
        BundleExtractor.Extract(rev1.Path, rev1.Sha256, paths.RetiredDirectory);
        BundleExtractor.Extract(rev2.Path, rev2.Sha256, paths.StagingDirectory);
        Assert.False(Directory.Exists(paths.FormulaDirectory));

        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);

        Assert.Equal(Extracted(rev2), Tree(paths.FormulaDirectory));
        AssertDataUntouched();
        AssertNoLeftovers();
    }

    [Fact]
    public void A_swap_interrupted_between_the_renames_is_finished_with_the_bundle_asked_for()
    {
        // The agent crashed between the renames while extracting revision 2; on restart its download
        // failed (upgrade_error) and the operator sent revision 3, the fix. Extraction of 3 must not
        // install the revision 2 left in formula.new.
        var rev3 = Bundle(3, new Dictionary<string, string> { ["fix.txt"] = "revision 3" });
        Directory.CreateDirectory(paths.Root);
        BundleExtractor.Extract(rev1.Path, rev1.Sha256, paths.RetiredDirectory);
        BundleExtractor.Extract(rev2.Path, rev2.Sha256, paths.StagingDirectory);

        FormulaSwap.Replace(paths, rev3.Path, rev3.Sha256);

        Assert.Equal(Extracted(rev3), Tree(paths.FormulaDirectory));
        AssertNoLeftovers();
    }

    [Fact]
    public void A_crash_after_the_second_rename_is_finished_by_replace()
    {
        // Crashed after formula.new → formula and before formula.old was deleted.
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);
        Directory.Move(paths.FormulaDirectory, paths.RetiredDirectory);
        BundleExtractor.Extract(rev2.Path, rev2.Sha256, paths.FormulaDirectory);

        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);

        Assert.Equal(Extracted(rev2), Tree(paths.FormulaDirectory));
        AssertNoLeftovers();
    }

    [Fact]
    public void A_partial_staging_directory_is_discarded_and_the_bundle_extracted_again()
    {
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);
        WriteData();
        // Crashed half-way through unpacking revision 2.
        Directory.CreateDirectory(Path.Combine(paths.StagingDirectory, "hooks"));
        File.WriteAllText(Path.Combine(paths.StagingDirectory, "hooks", "install"), "#!/bin/sh\n# trunc");
        File.WriteAllText(Path.Combine(paths.StagingDirectory, "garbage.partial"), "half a file");

        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);

        Assert.Equal(Extracted(rev2), Tree(paths.FormulaDirectory));
        Assert.False(File.Exists(Path.Combine(paths.FormulaDirectory, "garbage.partial")));
        AssertDataUntouched();
        AssertNoLeftovers();
    }

    [Fact]
    public void A_corrupt_bundle_is_rejected_and_the_current_formula_stays()
    {
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);
        WriteData();
        var before = Tree(paths.FormulaDirectory);
        var corrupt = File.ReadAllBytes(rev2.Path);
        corrupt[corrupt.Length / 2] ^= 0x40;

        using var altered = rev2.WithBytes(corrupt);
        Assert.Throws<BundleRejectedException>(() => FormulaSwap.Replace(paths, altered.Path, rev2.Sha256));

        Assert.Equal(before, Tree(paths.FormulaDirectory));
        AssertDataUntouched();
        AssertNoLeftovers();
    }

    [Fact]
    public void A_bundle_under_the_wrong_sha_is_rejected_and_the_current_formula_stays()
    {
        FormulaSwap.Replace(paths, rev1.Path, rev1.Sha256);
        var before = Tree(paths.FormulaDirectory);

        Assert.Throws<BundleRejectedException>(() => FormulaSwap.Replace(paths, rev2.Path, rev1.Sha256));

        Assert.Equal(before, Tree(paths.FormulaDirectory));
        AssertNoLeftovers();
    }

    [Fact]
    public void Replacing_with_the_same_revision_twice_is_harmless()
    {
        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);
        FormulaSwap.Replace(paths, rev2.Path, rev2.Sha256);

        Assert.Equal(Extracted(rev2), Tree(paths.FormulaDirectory));
        AssertNoLeftovers();
    }
}
