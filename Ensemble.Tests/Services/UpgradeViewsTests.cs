using System.Collections.Immutable;
using Ensemble.Formulas;
using Ensemble.Services;
using Xunit;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Services;

/// <summary>The per-unit view of an upgrade run that status and watchers read.</summary>
public sealed class UpgradeViewsTests
{
    private static readonly FormulaRef From = new(new FormulaId("web", 1), new string('1', 64));
    private static readonly FormulaRef To = new(new FormulaId("web", 2), new string('2', 64));

    private static UpgradeRun Run() => new("run1", From, To, 2,
        ["web/10", "web/3"],
        ImmutableSortedSet.Create("web/1", "web/2"),
        ImmutableSortedSet.Create("web/0"),
        ImmutableSortedDictionary<string, string>.Empty.Add("web/4", "upgrade-formula exited with code 3"));

    [Fact]
    public void Every_unit_of_the_run_has_one_entry_in_unit_order()
    {
        var view = UpgradeViews.Of(Run(), new Dictionary<string, string> { ["web/1"] = "extracting" });

        Assert.False(view.Finished);
        Assert.Equal(To.Id, view.To);
        Assert.Equal(
            [
                new UnitUpgradeState("web/0", "upgraded"),
                new UnitUpgradeState("web/1", "extracting"),
                new UnitUpgradeState("web/2", "launched"),
                new UnitUpgradeState("web/3", "queued"),
                new UnitUpgradeState("web/4", "failed", "upgrade-formula exited with code 3"),
                new UnitUpgradeState("web/10", "queued"),
            ],
            view.Units);
    }

    [Fact]
    public void When_a_run_ends_queued_units_are_not_started()
    {
        var run = Run() with { InFlight = ImmutableSortedSet<string>.Empty };
        var view = UpgradeViews.Of(run, new Dictionary<string, string>(), finished: true);
        Assert.True(view.Finished);
        Assert.Equal("not-started", view.Units.Single(u => u.Unit == "web/3").State);
    }

    [Fact]
    public void A_watchers_copy_follows_pushed_progress_and_the_end_of_the_run()
    {
        var view = new UpgradeView(From.Id, To.Id, false, [new("web/0", "queued"), new("web/1", "queued"), new("web/2", "queued")]);
        view = UpgradeViews.Apply(view, new UnitUpgradeProgressed("web", "web/1", "stopping"));
        view = UpgradeViews.Apply(view, new UnitUpgradeProgressed("web", "web/0", "failed: stop exited with code 1"));
        Assert.Equal([new("web/0", "failed", "stop exited with code 1"), new("web/1", "stopping"), new("web/2", "queued")], view.Units);

        view = UpgradeViews.Apply(view, new UpgradeFinished("web", To.Id, ["web/1"], new Dictionary<string, string> { ["web/0"] = "stop exited with code 1" }, ["web/2"]));
        Assert.True(view.Finished);
        Assert.Equal([new("web/0", "failed", "stop exited with code 1"), new("web/1", "upgraded"), new("web/2", "not-started")], view.Units);
    }
}
