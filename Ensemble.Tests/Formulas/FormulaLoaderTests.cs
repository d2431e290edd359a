using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class FormulaLoaderTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Loads_metadata_relations_in_both_forms_config_and_hooks()
    {
        var dir = scratch.PathOf("mysql");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), """
            name: mysql
            revision: 7
            summary: MySQL database
            description: |
              A relational database.
            provides:
              db: mysql
              admin:
                interface: mysql-root
                limit: 1
                optional: true
            requires:
              logging: {interface: syslog}
            peers:
              cluster: mysql-ha
            """);
        FormulaScratch.Write(Path.Combine(dir, "config.yaml"), """
            options:
              port:
                type: int
                default: 3306
                description: Port to listen on
              tuning:
                type: float
                default: 0.5
              debug:
                type: boolean
                default: false
              motd:
                description: untyped means string
            """);
        FormulaScratch.Write(Path.Combine(dir, "hooks", "start"), "#!/bin/sh\n", FormulaScratch.Executable);
        FormulaScratch.Write(Path.Combine(dir, "hooks", "install"), "#!/bin/sh\n", (UnixFileMode)0b100_000_000 | UnixFileMode.UserExecute);
        FormulaScratch.Write(Path.Combine(dir, "hooks", "db-relation-joined"), "#!/bin/sh\n", FormulaScratch.Plain | UnixFileMode.OtherExecute);

        var formula = FormulaLoader.Load(dir);

        Assert.Equal(Path.GetFullPath(dir), formula.Directory);
        Assert.Equal(new FormulaId("mysql", 7), formula.Id);
        Assert.Equal("MySQL database", formula.Metadata.Summary);
        Assert.Equal("A relational database.\n", formula.Metadata.Description);
        Assert.Equal(new Dictionary<string, string> { ["db"] = "mysql", ["admin"] = "mysql-root" }, formula.Metadata.Provides);
        Assert.Equal(new Dictionary<string, string> { ["logging"] = "syslog" }, formula.Metadata.Requires);
        Assert.Equal(new Dictionary<string, string> { ["cluster"] = "mysql-ha" }, formula.Metadata.Peers);
        Assert.Equal(
            [
                new ConfigOption("port", "int", "3306", "Port to listen on"),
                new ConfigOption("tuning", "float", "0.5", null),
                new ConfigOption("debug", "boolean", "false", null),
                new ConfigOption("motd", "string", null, "untyped means string"),
            ],
            formula.Config);
        Assert.Equal(["db-relation-joined", "install", "start"], formula.Hooks);
    }

    [Fact]
    public void Legacy_revision_file_supplies_the_revision()
    {
        var dir = scratch.PathOf("wordpress");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: wordpress\nsummary: blog\n");
        FormulaScratch.Write(Path.Combine(dir, "revision"), "12\n");

        var formula = FormulaLoader.Load(dir);

        Assert.Equal(12, formula.Metadata.Revision);
        Assert.Empty(formula.Hooks);
        Assert.Empty(formula.Config);
    }

    [Fact]
    public void Metadata_revision_wins_over_legacy_revision_file()
    {
        var dir = scratch.WriteFormula("wordpress", 3);
        FormulaScratch.Write(Path.Combine(dir, "revision"), "9");

        Assert.Equal(3, FormulaLoader.Load(dir).Metadata.Revision);
    }

    [Fact]
    public void Missing_metadata_is_a_problem()
    {
        Directory.CreateDirectory(scratch.PathOf("empty"));

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(scratch.PathOf("empty")));

        Assert.Contains("missing", FormulaScratch.Problem(e, "metadata.yaml", "(file)").Message);
    }

    [Fact]
    public void Bad_yaml_names_the_line()
    {
        var dir = scratch.PathOf("broken");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: broken\nrevision: 1\nsummary: [unclosed\n  - x: : y\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        var problem = FormulaScratch.Problem(e, "metadata.yaml", "yaml");
        Assert.Matches(@"^invalid YAML at line [34], column \d+: \S", problem.Message);
        Assert.DoesNotContain("Idx", problem.Message);
    }

    [Fact]
    public void All_metadata_and_hook_problems_are_reported_together()
    {
        var dir = scratch.PathOf("bar");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: foo\nrevision: -2\nprovides:\n  db: {limit: 1}\n");
        FormulaScratch.Write(Path.Combine(dir, "hooks", "install"), "#!/bin/sh\n", FormulaScratch.Plain);
        FormulaScratch.Write(Path.Combine(dir, "hooks", "start"), "#!/bin/sh\n", FormulaScratch.Executable);

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Equal("name 'foo' differs from the directory name 'bar'; rename one to match",
            FormulaScratch.Problem(e, "metadata.yaml", "name").Message);
        Assert.Contains("not a non-negative integer", FormulaScratch.Problem(e, "metadata.yaml", "revision").Message);
        Assert.Contains("interface", FormulaScratch.Problem(e, "metadata.yaml", "provides.db").Message);
        Assert.Contains("chmod +x", FormulaScratch.Problem(e, "hooks/install", "mode").Message);
        Assert.Equal(4, e.Problems.Count);
        Assert.Equal(Path.GetFullPath(dir), e.FormulaDirectory);
    }

    [Fact]
    public void Missing_name_and_revision_are_problems()
    {
        var dir = scratch.PathOf("anon");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "summary: nothing else\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Contains("name is missing", FormulaScratch.Problem(e, "metadata.yaml", "name").Message);
        Assert.Contains("revision is missing", FormulaScratch.Problem(e, "metadata.yaml", "revision").Message);
    }

    [Fact]
    public void Bad_legacy_revision_file_is_a_problem_of_that_file()
    {
        var dir = scratch.PathOf("old");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: old\n");
        FormulaScratch.Write(Path.Combine(dir, "revision"), "seven\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Contains("'seven'", FormulaScratch.Problem(e, "revision", "revision").Message);
    }

    [Fact]
    public void Config_problems_name_the_option()
    {
        var dir = scratch.WriteFormula("cfg", 1);
        FormulaScratch.Write(Path.Combine(dir, "config.yaml"), "options:\n  port:\n    type: integer\n  ratio:\n    type: float\n    default: lots\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Contains("unknown type 'integer'", FormulaScratch.Problem(e, "config.yaml", "options.port.type").Message);
        Assert.Contains("not a valid float", FormulaScratch.Problem(e, "config.yaml", "options.ratio.default").Message);
    }

    [Fact]
    public void Config_bad_yaml_names_the_line()
    {
        var dir = scratch.WriteFormula("cfg", 1);
        FormulaScratch.Write(Path.Combine(dir, "config.yaml"), "options:\n  port:\n    type: \"int\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Matches(@"invalid YAML at line \d+", FormulaScratch.Problem(e, "config.yaml", "yaml").Message);
    }

    [Fact]
    public void Symbolic_links_are_problems()
    {
        var dir = scratch.WriteFormula("linky", 1);
        File.CreateSymbolicLink(Path.Combine(dir, "hooks", "start"), "install");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaLoader.Load(dir));

        Assert.Contains("symbolic link", FormulaScratch.Problem(e, "hooks/start", "type").Message);
    }
}
