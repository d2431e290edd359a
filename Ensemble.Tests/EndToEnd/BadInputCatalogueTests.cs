using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>A real node with one service, 'base' (one running unit), for the catalogue to aim at.</summary>
public sealed class CatalogueEnvironment : IAsyncLifetime
{
    public LocalEnvironmentProcess Env { get; } = new();

    public async Task InitializeAsync()
    {
        await Env.InitializeAsync();
        TestFormulas.Write(Env.Repository, "base", 1);
        var deployed = await Env.Ensemble.RunAsync("deploy", "-e", "e2e", "--repository", Env.Repository, "--wait", "base");
        Assert.True(deployed.ExitCode == 0, deployed.ToString());
        Status = (await Env.Ensemble.RunAsync("status", "--format", "json", "-e", "e2e")).Stdout;
    }

    /// <summary>What status said once 'base' ran; no row may change it.</summary>
    public string Status { get; private set; } = "";

    public Task DisposeAsync() => Env.DisposeAsync();
}

/// <summary>
/// The catalogue of bad input: every row is something an operator can type wrong, with the exit code
/// docs/cli.md gives it and a piece of the one sentence that must name the thing. Each is run against a
/// real node and must leave the environment exactly as it was.
/// </summary>
public sealed class BadInputCatalogueTests(CatalogueEnvironment fixture, ITestOutputHelper output) : IClassFixture<CatalogueEnvironment>
{
    private const string Repo = "{repo}";

    public static TheoryData<string, int, string[]> Catalogue => new()
    {
        // unit counts
        { "at least 1", 2, ["deploy", "--repository", Repo, "-n", "0", "base", "other"] },
        { "1000 units per request", 2, ["deploy", "--repository", Repo, "-n", "1001", "base", "other"] },
        { "1000 units per request", 2, ["deploy", "--repository", Repo, "-n", "1000000", "base", "other"] },
        { "-n", 2, ["deploy", "--repository", Repo, "-n", "-1", "base", "other"] },
        { "-n", 2, ["deploy", "--repository", Repo, "-n", "many", "base", "other"] },
        { "-n", 2, ["deploy", "--repository", Repo, "-n", "99999999999", "base", "other"] },
        { "1000 units per request", 2, ["add-unit", "-n", "1001", "base"] },
        { "at least 1", 2, ["add-unit", "-n", "0", "base"] },
        { "'nope' is not deployed", 3, ["add-unit", "nope"] },
        // upgrade options
        { "--max-parallel", 2, ["upgrade-formula", "--max-parallel", "0", "base"] },
        { "--max-parallel must be between 1 and 5000", 2, ["upgrade-formula", "--max-parallel", "5001", "base"] },
        { "--max-parallel", 2, ["upgrade-formula", "--max-parallel", "lots", "base"] },
        { "--revision must be between 0 and 1000000000", 2, ["upgrade-formula", "--revision", "1000000001", "base"] },
        { "--revision", 2, ["upgrade-formula", "--revision", "-3", "base"] },
        { "--revision", 2, ["upgrade-formula", "--revision", "two", "base"] },
        { "revision 7 of formula 'base' not found", 3, ["upgrade-formula", "--revision", "7", "base"] },
        { "more than once", 2, ["upgrade-formula", "--units", "base/0,base/0", "base"] },
        { "base/9 is not a unit of 'base'", 3, ["upgrade-formula", "--units", "base/9", "base"] },
        { "other/0 is not a unit of 'base'", 3, ["upgrade-formula", "--units", "other/0", "base"] },
        { "not a unit name", 2, ["upgrade-formula", "--units", "zero", "base"] },
        { "no newer revision", 5, ["upgrade-formula", "base"] },
        { "does not exist", 3, ["upgrade-formula", "--repository", "/nonexistent/repository", "base"] },
        { "'nope' is not deployed", 3, ["upgrade-formula", "nope"] },
        // names
        { "not a valid service name", 2, ["deploy", "--repository", Repo, "base", "Base"] },
        { "not a valid service name", 2, ["deploy", "--repository", Repo, "base", "9lives"] },
        { "not a valid service name", 2, ["deploy", "--repository", Repo, "base", new string('s', 65)] },
        { "not a valid service name", 2, ["deploy", "--repository", Repo, "base", "a_b"] },
        { "not a valid service name", 2, ["upgrade-formula", "no/slash"] },
        { "formula 'ghost' not found", 3, ["deploy", "--repository", Repo, "ghost"] },
        // configuration ('base' declares no options)
        { "has no option 'port': its formula declares no options", 2, ["set", "base", "port=81"] },
        { "'port' is not an option setting; write key=value", 2, ["set", "base", "port"] },
        { "service 'ghost' is not deployed", 3, ["get", "ghost"] },
        { "config file /nonexistent/config.yaml does not exist", 3, ["deploy", "--repository", Repo, "--config", "/nonexistent/config.yaml", "base", "other"] },
        { "already deployed", 6, ["deploy", "--repository", Repo, "base"] },
        { "does not exist", 3, ["deploy", "--repository", "/nonexistent/repository", "base", "other"] },
        // relations ('base' provides website: http; nothing requires it)
        { "'Web:db' is not an endpoint", 2, ["add-relation", "base", "Web:db"] },
        { "service 'nope' is not deployed", 3, ["add-relation", "base", "nope"] },
        { "'base' cannot be related to itself", 2, ["add-relation", "base", "base:website"] },
        { "there is no relation between base and nope", 3, ["remove-relation", "base", "nope"] },
        { "add-relation", 2, ["add-relation", "base"] },
        // units
        { "not a unit name", 2, ["remove-unit", "base"] },
        { "not a unit name", 2, ["remove-unit", "base/-1"] },
        { "not a unit name", 2, ["remove-unit", "base/99999999999"] },
        { "does not exist", 3, ["remove-unit", "base/99"] },
        { "not in an error state", 6, ["resolved", "base/0"] },
        { "does not exist", 3, ["resolved", "base/99"] },
        { "does not exist", 3, ["log", "base/99"] },
        { "'nope' is not deployed", 3, ["destroy-service", "nope"] },
        // the command line itself
        { "--format", 2, ["status", "--format", "xml"] },
        { "--bogus", 2, ["status", "--bogus"] },
        { "frobnicate", 2, ["frobnicate"] },
        { "upgrade-formula", 2, ["upgrade-formula"] },
        { "deploy", 2, ["deploy"] },
        { "environment 'elsewhere' is not bootstrapped", 7, ["status", "-e", "elsewhere"] },
    };

    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task Bad_input_gets_one_sentence_naming_it_and_its_exit_code_and_changes_nothing(string names, int exitCode, string[] args)
    {
        var env = fixture.Env;
        var command = args.Select(a => a == Repo ? env.Repository : a).ToList();
        // Every row aims at the fixture's environment unless it names another one.
        if (!command.Contains("-e")) command.InsertRange(1, ["-e", "e2e"]);
        var result = await env.Ensemble.RunAsync([.. command]);
        output.WriteLine($"$ ensemble {string.Join(' ', command)}\n{result}");

        Assert.Equal(exitCode, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ensemble: ", line);
        Assert.Contains(names, line);
        Assert.Equal(fixture.Status, (await env.Ensemble.RunAsync("status", "--format", "json", "-e", "e2e")).Stdout);
    }
}
