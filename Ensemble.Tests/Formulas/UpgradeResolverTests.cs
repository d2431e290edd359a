using Ensemble.Tests.Support;
using System.Text;
using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class UpgradeResolverTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private LocalRepository Repository => new(scratch.Root);

    private FormulaBundle Deploy(string relative, int revision) =>
        FormulaPacker.Pack(FormulaLoader.Load(scratch.WriteFormula(relative, revision)));

    [Fact]
    public void Unknown_formula_is_not_found()
    {
        scratch.WriteFormula("wordpress", 1);

        var result = UpgradeResolver.Resolve(Repository, new FormulaId("mysql", 1), new string('0', 64), null);

        Assert.Equal(new UpgradeResolution.FormulaNotFound("mysql", scratch.Root), result);
    }

    [Fact]
    public void Newer_revision_in_any_series_is_the_upgrade()
    {
        var deployed = Deploy("mysql", 1);
        scratch.WriteFormula("precise/mysql", 4);
        scratch.WriteFormula("oneiric/mysql", 2);

        var result = UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null);

        var upgrade = Assert.IsType<UpgradeResolution.Upgrade>(result);
        Assert.Equal(new FormulaId("mysql", 4), upgrade.Bundle.Id);
        Assert.Equal(scratch.PathOf("precise", "mysql"), upgrade.Source.Directory);
        Assert.False(upgrade.RevisionBumped);
        Assert.Equal(FormulaPacker.Pack(upgrade.Source).Sha256, upgrade.Bundle.Sha256);
    }

    [Fact]
    public void Explicit_revision_may_go_down()
    {
        scratch.WriteFormula("precise/mysql", 1);
        var deployed = Deploy("mysql", 3);

        var upgrade = Assert.IsType<UpgradeResolution.Upgrade>(UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, 1));

        Assert.Equal(new FormulaId("mysql", 1), upgrade.Bundle.Id);
        Assert.False(upgrade.RevisionBumped);
    }

    [Fact]
    public void Explicit_revision_that_is_missing_is_reported()
    {
        var deployed = Deploy("mysql", 3);

        Assert.Equal(new UpgradeResolution.RevisionNotFound("mysql", 7),
            UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, 7));
    }

    [Fact]
    public void Explicit_revision_equal_to_deployed_is_no_newer_even_when_edited()
    {
        var deployed = Deploy("mysql", 3);
        scratch.WriteFormula("precise/mysql", 5);
        File.AppendAllText(scratch.PathOf("mysql", "hooks", "install"), "echo edited\n");

        Assert.Equal(new UpgradeResolution.NoNewerRevision(deployed.Id, 5),
            UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, 3));
    }

    [Fact]
    public void Author_edit_loop_bumps_past_the_deployed_revision_only_when_content_changes()
    {
        var deployed = Deploy("mysql", 1);
        var hook = scratch.PathOf("mysql", "hooks", "install");

        // Nothing edited: nothing to do.
        Assert.Equal(new UpgradeResolution.NoNewerRevision(deployed.Id, 1),
            UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null));

        // Edit a hook without touching the revision: deploy it as revision 2.
        File.AppendAllText(hook, "echo first edit\n");
        var first = Assert.IsType<UpgradeResolution.Upgrade>(UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null));
        Assert.True(first.RevisionBumped);
        Assert.Equal(new FormulaId("mysql", 2), first.Bundle.Id);
        Assert.Equal(1, first.Source.Metadata.Revision);
        Assert.Contains("revision: 2\n", ArchivedMetadata(first.Bundle));
        Assert.Contains("revision: 1\n", File.ReadAllText(scratch.PathOf("mysql", "metadata.yaml")));

        // Revision 2 is deployed; the directory still says 1 and is unchanged since.
        deployed = first.Bundle;
        Assert.Equal(new UpgradeResolution.NoNewerRevision(deployed.Id, 1),
            UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null));

        // Edit again: revision 3.
        File.AppendAllText(hook, "echo second edit\n");
        var second = Assert.IsType<UpgradeResolution.Upgrade>(UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null));
        Assert.True(second.RevisionBumped);
        Assert.Equal(new FormulaId("mysql", 3), second.Bundle.Id);
        Assert.NotEqual(first.Bundle.Sha256, second.Bundle.Sha256);
    }

    [Fact]
    public void Edit_loop_works_with_the_legacy_revision_file()
    {
        var dir = scratch.PathOf("wordpress");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: wordpress\n");
        FormulaScratch.Write(Path.Combine(dir, "revision"), "4");
        var deployed = FormulaPacker.Pack(FormulaLoader.Load(dir));
        FormulaScratch.Write(Path.Combine(dir, "README"), "edited");

        var bumped = Assert.IsType<UpgradeResolution.Upgrade>(UpgradeResolver.Resolve(Repository, deployed.Id, deployed.Sha256, null));

        Assert.Equal(new FormulaId("wordpress", 5), bumped.Bundle.Id);
        Assert.Equal(new UpgradeResolution.NoNewerRevision(bumped.Bundle.Id, 4),
            UpgradeResolver.Resolve(Repository, bumped.Bundle.Id, bumped.Bundle.Sha256, null));
    }

    private static string ArchivedMetadata(FormulaBundle bundle)
    {
        var entry = FormulaPackerTests.ReadEntries(bundle.ReadBytes()).Single(e => e.Name == "metadata.yaml");
        using var reader = new StreamReader(entry.DataStream!, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
