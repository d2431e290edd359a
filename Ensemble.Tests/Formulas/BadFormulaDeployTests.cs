using Ensemble.Formulas;
using Ensemble.Services;
using Ensemble.Tests.Support;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// Every formula of the catalogue is refused at deploy and at upgrade by a running environment, with a reason naming
/// the file and the limit, and nothing is stored: no bundle in formula storage, no write to the store, no unit touched.
/// </summary>
public sealed class BadFormulaDeployTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private string StorageRoot => ((FileFormulaStorage)Env.Storage).Root;

    [Fact]
    public async Task Every_bad_formula_is_refused_at_deploy_with_nothing_stored()
    {
        var stored = Snapshot(StorageRoot);
        var writes = Env.Server.WriteCount;

        for (var i = 0; i < BadFormulas.All.Count; i++)
        {
            var bad = BadFormulas.All[i];
            var repository = Path.Combine(Root, "bad-deploy", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            BadFormulas.Write(bad, Path.Combine(repository, "bad"), 1);

            var reply = await Env.DeployAsync($"bad{i}", "bad", repository, 1);

            AssertRefused(bad, reply);
        }

        Assert.Equal(stored, Snapshot(StorageRoot));
        Assert.Equal(writes, Env.Server.WriteCount);
        Assert.Empty(await Env.Topology.ListServicesAsync());
    }

    [Fact]
    public async Task Every_bad_formula_is_refused_at_upgrade_with_nothing_stored_and_the_unit_untouched()
    {
        TestFormulas.Write(Repository, "web", 1);
        var unit = (await DeployAsync("web", 1)).Single();
        var data = await DataDirAsync(unit);
        var formulaFiles = Snapshot(await FormulaDirAsync(unit));
        var trace = TestFormulas.HookTrace(data);
        var stored = Snapshot(StorageRoot);
        var writes = Env.Server.WriteCount;

        for (var i = 0; i < BadFormulas.All.Count; i++)
        {
            var bad = BadFormulas.All[i];
            var repository = Path.Combine(Root, "bad-upgrade", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            BadFormulas.Write(bad, Path.Combine(repository, "web"), 2);

            var reply = await Env.UpgradeAsync("web", repository: repository);

            AssertRefused(bad, reply);
        }

        Assert.Equal(stored, Snapshot(StorageRoot));
        Assert.Equal(writes, Env.Server.WriteCount);
        Assert.Equal("local:web-1", (await Env.Topology.GetServiceAsync("web"))!.Formula);
        var record = (await Env.Topology.GetUnitAsync(unit))!;
        Assert.Equal(("local:web-1", UnitPhase.Running), (record.Formula, record.State));
        Assert.Equal(trace, TestFormulas.HookTrace(data));
        Assert.Equal(formulaFiles, Snapshot(await FormulaDirAsync(unit)));
    }

    [Fact]
    public async Task Unreadable_repository_is_refused_naming_it_at_deploy_and_upgrade()
    {
        TestFormulas.Write(Repository, "web", 1);
        await DeployAsync("web", 1);
        var stored = Snapshot(StorageRoot);
        var writes = Env.Server.WriteCount;
        var unreadable = Path.Combine(Root, "unreadable");
        TestFormulas.Write(unreadable, "web", 2);
        using var mount = TestMount.Unreadable(unreadable);

        var deploy = Assert.IsType<CommandRejected>(await Env.DeployAsync("other", "web", unreadable, 1));
        var upgrade = Assert.IsType<CommandRejected>(await Env.UpgradeAsync("web", repository: unreadable));

        var sentence = $"cannot read repository directory {unreadable}: permission denied; make it readable, and its directories searchable, by the user the node runs as";
        Assert.Contains(sentence, deploy.Reason);
        Assert.Contains(sentence, upgrade.Reason);
        Assert.Equal(stored, Snapshot(StorageRoot));
        Assert.Equal(writes, Env.Server.WriteCount);
    }

    [Fact]
    public async Task I_O_error_in_a_formula_is_refused_naming_the_path_at_deploy()
    {
        var formula = TestFormulas.Write(Repository, "web", 1);
        var hook = Path.Combine(formula, "hooks", "start");
        using var mount = TestMount.Disconnected(hook);

        var reply = Assert.IsType<CommandRejected>(await Env.DeployAsync("web", "web", Repository, 1));

        Assert.Contains($"cannot read file {hook}: transport endpoint is not connected; check the disk or mount that holds it, then try again", reply.Reason);
        Assert.Empty(Snapshot(StorageRoot));
        Assert.Empty(await Env.Topology.ListServicesAsync());
    }

    [Fact]
    public async Task Read_only_formula_storage_is_refused_naming_it_and_nothing_is_deployed()
    {
        TestFormulas.Write(Repository, "web", 1);
        Directory.CreateDirectory(StorageRoot);
        using var mount = new ReadOnlyMount(StorageRoot);

        var reply = Assert.IsType<CommandRejected>(await Env.DeployAsync("web", "web", Repository, 1));

        Assert.Contains($"cannot store local:web-1 in the formula storage {StorageRoot}: read-only file system", reply.Reason);
        Assert.Empty(await Env.Topology.ListServicesAsync());
    }

    [Fact]
    public async Task Read_only_repository_deploys()
    {
        TestFormulas.Write(Repository, "web", 1);
        using var mount = new ReadOnlyMount(Repository);

        var units = await DeployAsync("web", 1);

        Assert.Equal("local:web-1", (await Env.Topology.GetUnitAsync(units.Single()))!.Formula);
    }

    [Fact]
    public async Task Repository_over_the_directory_limit_is_refused_naming_the_limit()
    {
        var huge = Path.Combine(Root, "huge");
        for (var i = 0; i <= FormulaLimits.Default.MaxRepositoryDirectories; i++) Directory.CreateDirectory(Path.Combine(huge, $"d{i}"));

        var reply = Assert.IsType<CommandRejected>(await Env.DeployAsync("web", "web", huge, 1));

        Assert.Contains($"repository {huge} holds more than 10,000 directories to examine, the limit for a repository", reply.Reason);
        Assert.Empty(await Env.Topology.ListServicesAsync());
    }

    private static void AssertRefused(BadFormula bad, object reply)
    {
        var rejected = Assert.IsType<CommandRejected>(reply);
        // Without metadata.yaml the directory is no formula, so there is none of that name to deploy.
        var expectedKind = bad.Field == "(file)" ? RejectionKind.NotFound : RejectionKind.InvalidFormula;
        Assert.True(rejected.Kind == expectedKind, $"{bad.Case}: {rejected.Kind}, not {expectedKind}: {rejected.Reason}");
        if (expectedKind == RejectionKind.InvalidFormula)
            Assert.True(rejected.Reason.Contains($"{bad.File}: {bad.Field}: ", StringComparison.Ordinal) && rejected.Reason.Contains(bad.Message, StringComparison.Ordinal),
                $"{bad.Case}: the reason does not name '{bad.File}: {bad.Field}: …{bad.Message}…': {rejected.Reason}");
    }

    // Every file under a directory with its length and content hash, to show nothing was added, removed or changed.
    private static List<string> Snapshot(string directory) => !Directory.Exists(directory) ? [] :
        Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => $"{Path.GetRelativePath(directory, f)} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))}")
            .ToList();
}
