using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class LocalRepositoryTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Finds_every_revision_across_root_and_series_directories_highest_first()
    {
        scratch.WriteFormula("mysql", 2);
        scratch.WriteFormula("precise/mysql", 5);
        scratch.WriteFormula("oneiric/mysql", 3);
        scratch.WriteFormula("precise/wordpress", 9);
        var repo = new LocalRepository(scratch.Root);

        Assert.Equal([5, 3, 2], repo.FindAll("mysql").Select(f => f.Metadata.Revision));
        Assert.Equal(scratch.PathOf("precise", "mysql"), repo.FindLatest("mysql")!.Directory);
        Assert.Equal(scratch.PathOf("oneiric", "mysql"), repo.Find("mysql", 3)!.Directory);
        Assert.Null(repo.Find("mysql", 4));
        Assert.Null(repo.FindLatest("postgresql"));
        Assert.Empty(repo.FindAll("postgresql"));
    }

    [Fact]
    public void Invalid_formula_of_the_wanted_name_throws_its_problems()
    {
        scratch.WriteFormula("precise/mysql", 5);
        var broken = scratch.WriteFormula("oneiric/mysql", 6);
        FormulaScratch.SetMode(Path.Combine(broken, "hooks", "install"), FormulaScratch.Plain);
        var repo = new LocalRepository(scratch.Root);

        var e = Assert.Throws<FormulaValidationException>(() => repo.FindLatest("mysql"));

        Assert.Equal(broken, e.FormulaDirectory);
        Assert.Contains(e.Problems, p => p.File == "hooks/install" && p.Field == "mode");
    }

    [Fact]
    public void Directory_claiming_the_wanted_name_in_metadata_counts_as_wanted()
    {
        scratch.WriteFormula("mysql", 1);
        FormulaScratch.Write(scratch.PathOf("mysql-old", "metadata.yaml"), "name: mysql\nrevision: 2\n");

        var e = Assert.Throws<FormulaValidationException>(() => new LocalRepository(scratch.Root).FindAll("mysql"));

        Assert.Contains(e.Problems, p => p.Field == "name" && p.Message.Contains("differs from the directory name 'mysql-old'"));
    }

    [Fact]
    public void Invalid_formulas_of_other_names_are_ignored()
    {
        scratch.WriteFormula("mysql", 1);
        FormulaScratch.Write(scratch.PathOf("broken", "metadata.yaml"), "name: [\n");

        Assert.Equal(1, new LocalRepository(scratch.Root).FindLatest("mysql")!.Metadata.Revision);
    }

    [Fact]
    public void Missing_root_says_how_to_fix_it()
    {
        var missing = scratch.PathOf("nowhere");

        var e = Assert.Throws<DirectoryNotFoundException>(() => new LocalRepository(missing).FindAll("mysql"));

        Assert.Equal($"repository directory {missing} does not exist; pass an existing directory with --repository", e.Message);
    }
}
