using Ensemble.Formulas;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

/// <summary>
/// What a watcher of an upgrade gets: the whole per-unit view on every subscription, the steps as they happen,
/// and the end; a watcher that comes late still learns how the run ended.
/// </summary>
public sealed class WatchUpgradeTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private string Hold => Path.Combine(TestFormulas.ControlDirectory(Repository), "hold-upgrade-formula");

    [Fact]
    public async Task Every_subscription_is_answered_with_the_whole_view_then_progress_and_the_end_are_pushed()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 2);
        File.WriteAllText(Hold, "");
        TestFormulas.Write(Repository, "web", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        foreach (var unit in units)
            await LocalEnvironment.WaitUntilAsync(async () =>
                TestFormulas.HookTrace(await DataDirAsync(unit)).Contains("upgrade-formula 2 begin"), Deadline, $"{unit} in its upgrade hook");

        var watcher = CreateTestProbe();
        Env.Services.Tell(new WatchUpgrade("web"), watcher);
        var snapshot = watcher.ExpectMsg<UpgradeStatus>(TimeSpan.FromSeconds(10));
        Assert.True(snapshot.Running);
        Assert.Equal(new FormulaId("web", 2), snapshot.View!.To);
        Assert.False(snapshot.View.Finished);
        Assert.Equal(units, snapshot.View.Units.Select(u => u.Unit));
        Assert.All(snapshot.View.Units, u => Assert.Equal("upgrading", u.State));

        // Subscribing again brings the view again, and pushes still come once.
        Env.Services.Tell(new WatchUpgrade("web"), watcher);
        Assert.True(watcher.ExpectMsg<UpgradeStatus>(TimeSpan.FromSeconds(10)).Running);
        File.Delete(Hold);
        var pushed = new List<object>();
        watcher.FishForMessage(m => { pushed.Add(m); return m is UpgradeFinished; }, TimeSpan.FromSeconds(60));
        foreach (var unit in units)
            Assert.Single(pushed.OfType<UnitUpgradeProgressed>(), p => p.Unit == unit && p.State == "upgraded");

        var late = CreateTestProbe();
        Env.Services.Tell(new WatchUpgrade("web"), late);
        await WaitForUpgradeToEndAsync("web");
        Env.Services.Tell(new WatchUpgrade("web"), late);
        var ended = late.FishForMessage<UpgradeStatus>(s => !s.Running, TimeSpan.FromSeconds(10));
        Assert.True(ended.View!.Finished);
        Assert.All(ended.View.Units, u => Assert.Equal("upgraded", u.State));
    }
}
