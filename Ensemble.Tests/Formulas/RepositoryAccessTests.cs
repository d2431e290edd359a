using Xunit;
using Ensemble.Formulas;
using Ensemble.Tests.Support;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// A repository, directory or file the node cannot read gives one sentence naming the path, the cause and the fix.
/// The tests run as root, which ignores permission bits, so unreadable paths are made with mounts (see <see cref="TestMount"/>).
/// </summary>
public sealed class RepositoryAccessTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static string Denied(string what, string path) =>
        $"cannot read {what} {path}: permission denied; make it readable, and its directories searchable, by the user the node runs as ({Environment.UserName}), for example with 'chmod -R a+rX', or use another repository";

    private static string Broken(string what, string path) =>
        $"cannot read {what} {path}: transport endpoint is not connected; check the disk or mount that holds it, then try again";

    [Fact]
    public void Unreadable_repository_directory_is_named_with_the_fix()
    {
        var root = scratch.PathOf("repo");
        Directory.CreateDirectory(root);
        using var mount = TestMount.Unreadable(root);

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(root).FindLatest("mysql"));

        Assert.Equal(Denied("repository directory", root), e.Message);
        Assert.IsType<UnauthorizedAccessException>(e.InnerException);
        Assert.Same(e, e.GetBaseException());
    }

    [Fact]
    public void Unreadable_series_directory_is_named_rather_than_skipped()
    {
        scratch.WriteFormula("repo/oneiric/mysql", 1);
        var series = scratch.PathOf("repo", "precise");
        Directory.CreateDirectory(series);
        using var mount = TestMount.Unreadable(series);

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(scratch.PathOf("repo")).FindLatest("mysql"));

        Assert.Equal(Denied("directory", series), e.Message);
    }

    [Fact]
    public void Unreadable_formula_directory_is_named()
    {
        var formula = scratch.WriteFormula("repo/mysql", 1);
        using var mount = TestMount.Unreadable(formula);

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(scratch.PathOf("repo")).FindLatest("mysql"));

        Assert.Equal(Denied("directory", formula), e.Message);
        Assert.Equal(Denied("formula directory", formula),
            Assert.Throws<RepositoryAccessException>(() => FormulaLoader.Load(formula)).Message);
    }

    [Fact]
    public void Unreadable_file_in_a_formula_is_named()
    {
        var formula = scratch.WriteFormula("repo/mysql", 1);
        var hook = Path.Combine(formula, "hooks", "install");
        using var mount = TestMount.Unreadable(hook);

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(scratch.PathOf("repo")).FindLatest("mysql"));

        Assert.Equal(Denied("file", hook), e.Message);
    }

    [Fact]
    public void Unreadable_metadata_of_another_formula_stops_the_scan_instead_of_hiding_it()
    {
        scratch.WriteFormula("repo/mysql", 1);
        var other = scratch.WriteFormula("repo/mysql-copy", 2);
        using var mount = TestMount.Unreadable(Path.Combine(other, "metadata.yaml"));

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(scratch.PathOf("repo")).FindLatest("mysql"));

        // It might claim to be mysql revision 2; deploying revision 1 silently would be wrong.
        Assert.Equal(Denied("directory", other), e.Message);
    }

    [Fact]
    public void I_O_error_on_a_formula_directory_is_named_with_the_cause()
    {
        var formula = scratch.WriteFormula("repo/mysql", 1);
        using var mount = TestMount.Disconnected(formula);

        var e = Assert.Throws<RepositoryAccessException>(() => new LocalRepository(scratch.PathOf("repo")).FindLatest("mysql"));

        Assert.Equal(Broken("directory", formula), e.Message);
    }

    [Fact]
    public void I_O_error_on_a_file_is_named_with_the_cause()
    {
        var formula = scratch.WriteFormula("repo/mysql", 1);
        var template = Path.Combine(formula, "templates", "my.cnf");
        FormulaScratch.Write(template, "[mysqld]\n");
        using var mount = TestMount.Disconnected(template);

        var e = Assert.Throws<RepositoryAccessException>(() => FormulaLoader.Load(formula));

        Assert.Equal(Broken("file", template), e.Message);
    }

    [Fact]
    public void A_file_that_becomes_unreadable_after_loading_is_named_by_the_packer()
    {
        var formula = FormulaLoader.Load(scratch.WriteFormula("repo/mysql", 1));
        var hook = Path.Combine(formula.Directory, "hooks", "install");
        using var mount = TestMount.Unreadable(hook);

        var e = Assert.Throws<RepositoryAccessException>(() => FormulaPacker.Pack(formula));

        Assert.Equal(Denied("file", hook), e.Message);
    }

    [Fact]
    public void Read_only_repository_deploys_and_is_never_written()
    {
        scratch.WriteFormula("repo/mysql", 4);
        var root = scratch.PathOf("repo");
        using var mount = new ReadOnlyMount(root);
        Assert.Throws<IOException>(() => File.WriteAllText(Path.Combine(root, "probe"), "x"));

        var repository = new LocalRepository(root);
        var latest = repository.FindLatest("mysql")!;
        var bundle = FormulaPacker.Pack(latest, revisionOverride: 5);

        Assert.Equal(new FormulaId("mysql", 5), bundle.Id);
        Assert.Equal(4, FormulaLoader.Load(latest.Directory).Metadata.Revision);
    }

    [Fact]
    public void Repository_that_is_a_file_says_so()
    {
        var file = scratch.PathOf("repo.tar");
        File.WriteAllText(file, "not a directory");

        var e = Assert.Throws<DirectoryNotFoundException>(() => new LocalRepository(file).FindAll("mysql"));

        Assert.Equal($"repository directory {file} is a file, not a directory; pass an existing directory with --repository", e.Message);
    }

    [Fact]
    public void Repository_scan_stops_at_the_directory_limit()
    {
        for (var i = 0; i < 4; i++) Directory.CreateDirectory(scratch.PathOf("repo", $"series{i}", "a"));
        var root = scratch.PathOf("repo");

        var e = Assert.Throws<RepositoryTooLargeException>(() =>
            new LocalRepository(root, new FormulaLimits { MaxRepositoryDirectories = 6 }).FindAll("mysql"));

        Assert.Equal($"repository {root} holds more than 6 directories to examine, the limit for a repository; point --repository at a directory holding only formulas and their series directories", e.Message);
        Assert.Empty(new LocalRepository(root, new FormulaLimits { MaxRepositoryDirectories = 8 }).FindAll("mysql"));
    }
}
