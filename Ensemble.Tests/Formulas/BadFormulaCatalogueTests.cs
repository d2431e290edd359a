using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

/// <summary>Every formula of the catalogue is refused by the loader, and the ones the packer must catch by the packer, naming the file and the limit.</summary>
public sealed class BadFormulaCatalogueTests : IDisposable
{
    // A fifo that was opened would block forever; a refusal takes milliseconds.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    public static TheoryData<string> Cases() => BadFormulas.Cases();

    public static TheoryData<string> PackerCases() => BadFormulas.Cases(packerOnly: true);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Loading_refuses_it_naming_the_file_and_the_limit(string name)
    {
        var bad = BadFormulas.Named(name);
        var dir = BadFormulas.Write(bad, scratch.PathOf("bad"), 1);

        var e = await Assert.ThrowsAsync<FormulaValidationException>(() => Task.Run(() => FormulaLoader.Load(dir)).WaitAsync(Deadline));

        BadFormulas.AssertNamed(bad, e.Problems);
        Assert.Equal(dir, e.FormulaDirectory);
        Assert.StartsWith($"Formula at {dir} is invalid: ", e.Message);
    }

    [Theory]
    [MemberData(nameof(PackerCases))]
    public async Task Packing_refuses_it_on_its_own_without_reading_what_is_too_big(string name)
    {
        var bad = BadFormulas.Named(name);
        var dir = BadFormulas.Write(bad, scratch.PathOf("bad"), 1);
        // As if the formula had been loaded before it was broken.
        var formula = new Formula(dir, new FormulaMetadata("bad", 1, "", "",
            new Dictionary<string, string>(), new Dictionary<string, string>(), new Dictionary<string, string>()), [], []);

        var allocated = 0L;
        var e = await Assert.ThrowsAsync<FormulaValidationException>(() => Task.Run(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                return FormulaPacker.Pack(formula, revisionOverride: 2);
            }
            finally
            {
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }).WaitAsync(Deadline));

        BadFormulas.AssertNamed(bad, e.Problems);
        // Sizes are checked from the file system: a 1.2 GiB file costs nothing to refuse.
        Assert.True(allocated < 16 * 1024 * 1024, $"packing allocated {allocated:N0} bytes before refusing");
    }

    [Fact]
    public void The_catalogue_is_as_large_as_reported()
    {
        Assert.True(BadFormulas.All.Count >= 60, $"{BadFormulas.All.Count} cases");
        Assert.Equal(BadFormulas.All.Count, BadFormulas.All.Select(b => b.Case).Distinct().Count());
    }
}
