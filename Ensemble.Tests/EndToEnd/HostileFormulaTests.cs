using System.Text.Json;
using Ensemble.Tests.Formulas;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// The hostile formulas the issue names, refused at the door by a real node: at deploy and at upgrade,
/// exit 4 with a sentence naming the file and the limit, nothing stored, no unit touched.
/// </summary>
public sealed class HostileFormulaTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    public static TheoryData<string> IssueCases => new()
    {
        "file far over the file size cap (sparse, 1.2 GiB)",
        "more entries than the entry cap",
        "billion laughs in metadata.yaml",
        "invalid UTF-8 in metadata.yaml",
    };

    private string Storage => Path.Combine(env.Root, "home", "environments", "e2e", "data", "formula-storage");

    private string[] StoredBundles() =>
        Directory.Exists(Storage) ? Directory.GetFiles(Storage, "*", SearchOption.AllDirectories).Order().ToArray() : [];

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        return result;
    }

    private static void RefusedAsMalformed(CommandResult result, BadFormula bad)
    {
        Assert.Equal(4, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ensemble: ", line);
        Assert.Contains(bad.File, line);
        Assert.Contains(bad.Message, line);
    }

    [Theory]
    [MemberData(nameof(IssueCases))]
    public async Task A_hostile_formula_is_refused_at_deploy_and_at_upgrade_with_nothing_stored(string name)
    {
        var bad = BadFormulas.All.Single(b => b.Case == name);
        var service = "h" + Math.Abs(name.GetHashCode() % 100000);
        var repository = Path.Combine(env.Root, "hostile-" + service);

        // Deploy: refused, nothing stored, no service.
        BadFormulas.Write(bad, Path.Combine(repository, service), revision: 1);
        var stored = StoredBundles();
        RefusedAsMalformed(await Run("deploy", "-e", "e2e", "--repository", repository, service), bad);
        Assert.Equal(stored, StoredBundles());
        Assert.Equal(3, (await Run("status", "-e", "e2e", service)).ExitCode);

        // Upgrade: a good revision 1 runs, the hostile revision 2 is refused, the unit keeps running revision 1.
        Directory.Delete(Path.Combine(repository, service), recursive: true);
        BadFormulas.WriteValid(Path.Combine(repository, service), revision: 1);
        Assert.Equal(0, (await Run("deploy", "-e", "e2e", "--repository", repository, "--wait", service)).ExitCode);
        Directory.Delete(Path.Combine(repository, service), recursive: true);
        BadFormulas.Write(bad, Path.Combine(repository, service), revision: 2);
        stored = StoredBundles();

        RefusedAsMalformed(await Run("upgrade-formula", "-e", "e2e", service), bad);

        Assert.Equal(stored, StoredBundles());
        var status = JsonDocument.Parse((await Run("status", "-e", "e2e", "--format", "json", service)).Stdout).RootElement;
        var unit = status.GetProperty("services").GetProperty(service).GetProperty("units").GetProperty($"{service}/0");
        Assert.Equal($"local:{service}-1", unit.GetProperty("formula").GetString());
        Assert.Equal("running", unit.GetProperty("state").GetString());
        Assert.False(unit.GetProperty("upgrading").GetBoolean());
        Directory.Delete(repository, recursive: true);
    }
}
