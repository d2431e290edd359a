using Ensemble.Formulas;
using Ensemble.Units;
using Xunit;

namespace Ensemble.Tests.Units;

public sealed class UnitStateFileTests : IDisposable
{
    private readonly ScratchDirectory scratch = new("ensemble-state");
    private readonly UnitPaths paths;

    public UnitStateFileTests() => paths = UnitPaths.For(scratch.Combine("units"), "mysql/0");

    public void Dispose() => scratch.Dispose();

    private static readonly string Sha = new('a', 64);

    private static UnitState Running(int revision) =>
        UnitState.New("mysql/0") with { Phase = UnitPhase.Running, Current = new FormulaRef(new FormulaId("mysql", revision), Sha) };

    /// <summary>The file's inode number, as stat(1) reports it (.NET has no API for it).</summary>
    private static ulong Inode(string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("stat") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("%i");
        start.ArgumentList.Add(path);
        using var stat = System.Diagnostics.Process.Start(start)!;
        var output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return stat.ExitCode == 0 ? ulong.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture) : throw new IOException($"stat {path} exited {stat.ExitCode}");
    }

    [Fact]
    public void Each_save_replaces_the_state_whole_and_the_last_one_is_what_loads()
    {
        for (var revision = 1; revision <= 50; revision++)
        {
            UnitStateFile.Save(paths, Running(revision));
            Assert.Equal(revision, UnitStateFile.Load(paths)!.Current!.Id.Revision);
        }
    }

    [Fact]
    public void Saves_reuse_two_files_instead_of_creating_one_each_time()
    {
        UnitStateFile.Save(paths, Running(1));
        UnitStateFile.Save(paths, Running(2));
        var pair = new HashSet<ulong> { Inode(paths.StateFile), Inode(paths.StateFile + ".next") };
        for (var revision = 3; revision <= 20; revision++)
        {
            UnitStateFile.Save(paths, Running(revision));
            // The state file and its spare swap places; no third inode is ever allocated.
            Assert.Contains(Inode(paths.StateFile), pair);
        }
        Assert.Equal(20, UnitStateFile.Load(paths)!.Current!.Id.Revision);
    }

    [Fact]
    public async Task A_reader_beside_a_writer_always_loads_a_whole_state()
    {
        UnitStateFile.Save(paths, Running(1));
        using var done = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            for (var revision = 2; revision <= 3000; revision++) UnitStateFile.Save(paths, Running(revision));
            done.Cancel();
        });
        var loads = 0;
        var last = 0;
        while (!done.IsCancellationRequested)
        {
            var revision = UnitStateFile.Load(paths)!.Current!.Id.Revision;
            Assert.InRange(revision, 1, 3000);
            last = revision;
            loads++;
        }
        await writer;
        Assert.True(loads > 0);
        Assert.Equal(3000, UnitStateFile.Load(paths)!.Current!.Id.Revision);
        Assert.InRange(last, 1, 3000);
    }

    [Fact]
    public void A_damaged_state_file_is_named_and_not_loaded()
    {
        UnitStateFile.Save(paths, Running(1));
        File.WriteAllText(paths.StateFile, "{ not json");
        var refused = Assert.Throws<UnitStateFileException>(() => UnitStateFile.Load(paths));
        Assert.Contains(paths.StateFile, refused.Message);
        Assert.Contains("not valid JSON", refused.Message);
    }
}
