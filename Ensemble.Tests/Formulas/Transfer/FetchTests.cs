using Akka.Actor;
using Ensemble.Formulas;
using Ensemble.Formulas.Transfer;
using Ensemble.Topology;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Formulas.Transfer.BundleReplies;
using static Ensemble.Formulas.Transfer.BundleRequests;

namespace Ensemble.Tests.Formulas.Transfer;

/// <summary>
/// Agents fetch bundles from the controller's bundle server, found through the store, in chunks: each machine fetches
/// each revision once however many of its units use it, a fetch cut off midway resumes where it stopped (retried with
/// the download backoff), and bytes changed on the way are refetched, never unpacked.
/// </summary>
public sealed class FetchTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private FaultyFormulaStorage _source = null!;
    private readonly List<FaultyFormulaStorage> _sources = [];

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with
    {
        Machines = 2,
        FetchFromBundleServer = true,
        AgentStorage = inner =>
        {
            var faulty = new FaultyFormulaStorage(inner);
            lock (_sources) _sources.Add(faulty);
            return _source = faulty;
        },
    };

    /// <summary>The formula with a file of random bytes, so that its bundle takes many chunks.</summary>
    private void WriteLarge(string name, int revision, int randomBytes = 600_000)
    {
        var dir = TestFormulas.Write(Repository, name, revision);
        var blob = new byte[randomBytes];
        Random.Shared.NextBytes(blob);
        File.WriteAllBytes(Path.Combine(dir, "blob.bin"), blob);
    }

    private long Downloads(string machine) => Env.Machine(machine).Cache.Downloads;

    [Fact]
    public async Task The_controller_announces_its_bundle_server_in_the_store()
    {
        var controllers = await new ControllerDirectory(Env.Topology).ListAsync();
        var controller = Assert.Single(controllers);
        Assert.EndsWith("/user/" + BundleTransfer.BundlesActorName, controller.Bundles);
    }

    [Fact]
    public async Task Each_machine_fetches_each_revision_once_from_the_bundle_server()
    {
        WriteLarge("app", 1);
        var units = await DeployAsync("app", 6);
        var machines = (await Task.WhenAll(units.Select(u => Env.Topology.GetUnitAsync(u)))).Select(u => u!.Machine).Distinct().Order().ToList();
        Assert.Equal(["m0", "m1"], machines);
        Assert.Equal([1L, 1L], machines.Select(Downloads));

        WriteLarge("app", 2);
        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync(units, u => u.Formula == "local:app-2" && u.State == UnitPhase.Running, "every unit on revision 2");

        Assert.Equal([2L, 2L], machines.Select(Downloads));
        // What each machine cached is the stored bundle, byte for byte.
        var stored = (await Env.Topology.GetServiceAsync("app"))!.Sha256;
        foreach (var machine in machines)
        {
            var cached = Path.Combine(Env.Machine(machine).DataDirectory, "formula-cache", stored + ".tar.gz");
            Assert.Equal(BundleFiles.Sha256Hex(await File.ReadAllBytesAsync(cached)), stored);
        }
    }

    [Fact]
    public async Task A_fetch_cut_off_midway_resumes_where_it_stopped_and_the_unit_runs()
    {
        WriteLarge("app", 1);
        var unit = (await DeployAsync("app", 1)).Single();
        WriteLarge("app", 2);
        const long cut = 3 * BundleTransfer.ChunkSize + 1234;
        foreach (var source in _sources) source.InterruptNext(1, cut);
        var machine = (await Env.Topology.GetUnitAsync(unit))!.Machine;
        var faulty = _sources[int.Parse(machine[1..], System.Globalization.CultureInfo.InvariantCulture)];
        var before = faulty.Offsets.Count;

        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync([unit], u => u.Formula == "local:app-2" && u.State == UnitPhase.Running, "the unit on revision 2");

        // The first attempt began at 0 and was cut; the retry asked only for the rest.
        Assert.Equal([0L, cut], faulty.Offsets.Skip(before));
        Assert.Equal(2, Downloads(machine));
        var paths = await Env.UnitPathsAsync(unit);
        Assert.Equal(600_000, new FileInfo(Path.Combine(paths.FormulaDirectory, "blob.bin")).Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(Env.Machine(machine).DataDirectory, "formula-cache"), "*.part"));
    }

    [Fact]
    public async Task Bytes_changed_on_the_way_are_fetched_again_from_the_start_and_never_unpacked()
    {
        WriteLarge("app", 1);
        var unit = (await DeployAsync("app", 1)).Single();
        WriteLarge("app", 2);
        var machine = (await Env.Topology.GetUnitAsync(unit))!.Machine;
        var faulty = _sources[int.Parse(machine[1..], System.Globalization.CultureInfo.InvariantCulture)];
        faulty.CorruptNext(1);
        var before = faulty.Offsets.Count;

        await Env.UpgradeAsync("app");
        await WaitForUnitsAsync([unit], u => u.Formula == "local:app-2" && u.State == UnitPhase.Running, "the unit on revision 2");

        Assert.Equal([0L, 0L], faulty.Offsets.Skip(before));
    }

    [Fact]
    public async Task The_bundle_server_refuses_malformed_requests_and_says_what_it_does_not_hold()
    {
        var server = await Sys.ActorSelection("/user/" + BundleTransfer.BundlesActorName).ResolveOne(TimeSpan.FromSeconds(5));
        var ask = TimeSpan.FromSeconds(5);

        var traversal = Assert.IsType<BundleUnavailable>(await server.Ask<object>(new GetBundleChunk("../../etc/passwd", 0, 100), ask));
        Assert.Contains("a chunk request names a sha256 of 64 hex digits", traversal.Reason);
        var tooMuch = Assert.IsType<BundleUnavailable>(await server.Ask<object>(new GetBundleChunk(new string('c', 64), 0, BundleTransfer.ChunkSize + 1), ask));
        Assert.False(tooMuch.NotStored);
        var missing = Assert.IsType<BundleUnavailable>(await server.Ask<object>(new GetBundleChunk(new string('c', 64), 0, 100), ask));
        Assert.True(missing.NotStored);
    }
}
