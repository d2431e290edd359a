using System.Collections.Immutable;
using Ensemble.Formulas;
using Ensemble.Services;
using Xunit;
using static Ensemble.Services.ServiceEvents;

namespace Ensemble.Tests.Services;

public sealed class ServiceLogicTests
{
    private static readonly FormulaRef Rev1 = new(new FormulaId("wordpress", 1), new string('a', 64));
    private static readonly FormulaRef Rev2 = new(new FormulaId("wordpress", 2), new string('b', 64));

    private static ServiceState Replay(params IServiceEvent[] events) =>
        events.Aggregate(ServiceState.Empty("wordpress"), ServiceLogic.Apply);

    private static ServiceState Deployed(int units) => Replay(
        [
            new ServiceCreated(Rev1, "/repo"),
            .. Enumerable.Range(0, units).Select(n => (IServiceEvent)new UnitPlaced($"wordpress/{n}", $"machine-{n % 2}")),
        ]);

    private static UpgradeRun Run(int maxParallel, params string[] units) =>
        new("run-1", Rev1, Rev2, maxParallel, [.. units],
            ImmutableSortedSet<string>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<string, string>.Empty);

    // ---- Apply ----

    [Fact]
    public void An_empty_service_is_not_deployed()
    {
        var state = ServiceState.Empty("wordpress");
        Assert.False(state.Deployed);
        Assert.Empty(state.Units);
        Assert.Equal(0, state.NextUnitNumber);
        Assert.Null(state.Upgrade);
    }

    [Fact]
    public void ServiceDeployed_sets_formula_and_repository()
    {
        var state = Replay(new ServiceCreated(Rev1, "/srv/repo"));
        Assert.True(state.Deployed);
        Assert.Equal(Rev1, state.Formula);
        Assert.Equal("/srv/repo", state.Repository);
    }

    [Fact]
    public void UnitPlaced_records_the_machine_and_advances_the_next_unit_number()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UnitPlaced("wordpress/0", "m0"),
            new UnitPlaced("wordpress/5", "m1"),
            new UnitPlaced("wordpress/2", "m0"));

        Assert.Equal(new Dictionary<string, string> { ["wordpress/0"] = "m0", ["wordpress/2"] = "m0", ["wordpress/5"] = "m1" }, state.Units);
        Assert.Equal(6, state.NextUnitNumber);
    }

    [Fact]
    public void UnitDestroyed_removes_the_unit_but_never_reuses_its_number()
    {
        var state = ServiceLogic.Apply(Deployed(3), new UnitDeleted("wordpress/2"));
        Assert.Equal(["wordpress/0", "wordpress/1"], state.Units.Keys);
        Assert.Equal(3, state.NextUnitNumber);
    }

    [Fact]
    public void UnitDestroyed_drops_a_queued_unit_from_the_running_upgrade()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UnitPlaced("wordpress/0", "m0"),
            new UnitPlaced("wordpress/1", "m0"),
            new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0", "wordpress/1"], 1),
            new UnitDeleted("wordpress/1"));

        Assert.Equal(["wordpress/0"], state.Upgrade!.Queued);
    }

    [Fact]
    public void UpgradeBegan_switches_the_service_formula_and_queues_the_units()
    {
        var state = ServiceLogic.Apply(Deployed(3), new UpgradeBegan("run-1", Rev1, Rev2, "/repo2", ["wordpress/2", "wordpress/0"], 2));

        Assert.Equal(Rev2, state.Formula);
        Assert.Equal("/repo2", state.Repository);
        var run = Assert.IsType<UpgradeRun>(state.Upgrade);
        Assert.Equal("run-1", run.RunId);
        Assert.Equal(Rev1, run.From);
        Assert.Equal(Rev2, run.To);
        Assert.Equal(2, run.MaxParallel);
        Assert.Equal(["wordpress/2", "wordpress/0"], run.Queued);
        Assert.Empty(run.InFlight);
        Assert.Empty(run.Succeeded);
        Assert.Empty(run.Failed);
        Assert.False(run.Halted);
        Assert.False(run.Done);
    }

    [Fact]
    public void Launch_success_and_failure_move_units_through_the_run()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0", "wordpress/1", "wordpress/2"], 3),
            new UnitUpgradeLaunched("run-1", "wordpress/0"),
            new UnitUpgradeLaunched("run-1", "wordpress/1"));
        Assert.Equal(["wordpress/2"], state.Upgrade!.Queued);
        Assert.Equal(["wordpress/0", "wordpress/1"], state.Upgrade.InFlight);

        state = ServiceLogic.Apply(state, new UnitUpgradeSucceeded("run-1", "wordpress/0"));
        state = ServiceLogic.Apply(state, new ServiceEvents.UnitUpgradeFailed("run-1", "wordpress/1", "upgrade_error: hook exited with code 3"));

        var run = state.Upgrade!;
        Assert.Empty(run.InFlight);
        Assert.Equal(["wordpress/0"], run.Succeeded);
        Assert.Equal(new Dictionary<string, string> { ["wordpress/1"] = "upgrade_error: hook exited with code 3" }, run.Failed);
        Assert.True(run.Halted);
        Assert.True(run.Done);
        Assert.Equal(["wordpress/2"], run.Queued);
    }

    [Fact]
    public void Events_of_another_run_are_ignored()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UpgradeBegan("run-2", Rev1, Rev2, "/repo", ["wordpress/0"], 1));

        var after = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UpgradeBegan("run-2", Rev1, Rev2, "/repo", ["wordpress/0"], 1),
            new UnitUpgradeLaunched("run-1", "wordpress/0"),
            new UnitUpgradeSucceeded("run-1", "wordpress/0"),
            new ServiceEvents.UnitUpgradeFailed("run-1", "wordpress/0", "old"),
            new UpgradeEnded("run-1"));

        Assert.NotNull(after.Upgrade);
        Assert.Equal(state.Upgrade!.Queued, after.Upgrade.Queued);
        Assert.Empty(after.Upgrade.InFlight);
        Assert.Empty(after.Upgrade.Succeeded);
        Assert.Empty(after.Upgrade.Failed);
    }

    [Fact]
    public void Run_events_without_a_run_change_nothing()
    {
        var state = Deployed(1);
        Assert.Equal(state, ServiceLogic.Apply(state, new UnitUpgradeLaunched("run-1", "wordpress/0")));
        Assert.Equal(state, ServiceLogic.Apply(state, new UpgradeEnded("run-1")));
    }

    [Fact]
    public void UpgradeEnded_clears_the_run_and_keeps_the_new_formula()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0"], 1),
            new UnitUpgradeLaunched("run-1", "wordpress/0"),
            new UnitUpgradeSucceeded("run-1", "wordpress/0"),
            new UpgradeEnded("run-1"));

        Assert.Null(state.Upgrade);
        Assert.Equal(Rev2, state.Formula);
    }

    // ---- NextLaunches and Done ----

    [Fact]
    public void NextLaunches_fills_up_to_max_parallel_in_queue_order()
    {
        var run = Run(2, "wordpress/3", "wordpress/1", "wordpress/2", "wordpress/0");
        Assert.Equal(["wordpress/3", "wordpress/1"], ServiceLogic.NextLaunches(run));

        run = run with { Queued = run.Queued.RemoveRange(0, 2), InFlight = ["wordpress/1", "wordpress/3"] };
        Assert.Empty(ServiceLogic.NextLaunches(run));

        run = run with { InFlight = run.InFlight.Remove("wordpress/3"), Succeeded = ["wordpress/3"] };
        Assert.Equal(["wordpress/2"], ServiceLogic.NextLaunches(run));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 3)]
    [InlineData(10, 5)]
    [InlineData(0, 0)]
    public void NextLaunches_never_exceeds_max_parallel(int maxParallel, int expected)
    {
        var run = Run(maxParallel, "a/0", "a/1", "a/2", "a/3", "a/4");
        Assert.Equal(expected, ServiceLogic.NextLaunches(run).Count);
    }

    [Fact]
    public void NextLaunches_tolerates_more_in_flight_than_allowed()
    {
        var run = Run(1, "a/3") with { InFlight = ["a/0", "a/1"] };
        Assert.Empty(ServiceLogic.NextLaunches(run));
    }

    [Fact]
    public void A_failure_halts_the_queued_units()
    {
        var run = Run(1, "a/1", "a/2") with { Failed = ImmutableSortedDictionary<string, string>.Empty.Add("a/0", "start_error: boom") };
        Assert.True(run.Halted);
        Assert.Empty(ServiceLogic.NextLaunches(run));
        Assert.True(run.Done);
    }

    [Fact]
    public void A_halted_run_is_not_done_while_units_are_in_flight()
    {
        var run = Run(3, "a/3") with
        {
            InFlight = ["a/1"],
            Failed = ImmutableSortedDictionary<string, string>.Empty.Add("a/0", "boom"),
        };
        Assert.True(run.Halted);
        Assert.Empty(ServiceLogic.NextLaunches(run));
        Assert.False(run.Done);
    }

    [Fact]
    public void Done_when_nothing_is_queued_or_in_flight()
    {
        Assert.False(Run(1, "a/0").Done);
        Assert.False((Run(1) with { InFlight = ["a/0"] }).Done);
        Assert.True((Run(1) with { Succeeded = ["a/0"] }).Done);
        Assert.True(Run(1).Done);
    }

    [Fact]
    public void A_rollout_replayed_from_events_launches_each_unit_once_and_finishes()
    {
        var units = Enumerable.Range(0, 5).Select(n => $"wordpress/{n}").ToArray();
        var state = ServiceLogic.Apply(Deployed(5), new UpgradeBegan("run-1", Rev1, Rev2, "/repo", units, 2));
        var launched = new List<string>();
        while (!state.Upgrade!.Done)
        {
            foreach (var unit in ServiceLogic.NextLaunches(state.Upgrade))
            {
                state = ServiceLogic.Apply(state, new UnitUpgradeLaunched("run-1", unit));
                launched.Add(unit);
            }
            Assert.True(state.Upgrade!.InFlight.Count <= 2);
            state = ServiceLogic.Apply(state, new UnitUpgradeSucceeded("run-1", state.Upgrade.InFlight.First()));
        }

        Assert.Equal(units, launched);
        Assert.Equal(units, state.Upgrade.Succeeded);
    }

    // ---- PlaceUnit ----

    [Fact]
    public void PlaceUnit_without_machines_is_null() =>
        Assert.Null(ServiceLogic.PlaceUnit([], new Dictionary<string, string>()));

    [Fact]
    public void PlaceUnit_spreads_units_evenly_in_machine_name_order()
    {
        var machines = new[] { "machine-c", "machine-a", "machine-b" };
        var placed = new Dictionary<string, string>();
        var picks = new List<string>();
        for (var n = 0; n < 7; n++)
        {
            var machine = ServiceLogic.PlaceUnit(machines, placed)!;
            picks.Add(machine);
            placed[$"wordpress/{n}"] = machine;
        }

        Assert.Equal(["machine-a", "machine-b", "machine-c", "machine-a", "machine-b", "machine-c", "machine-a"], picks);
    }

    [Fact]
    public void PlaceUnit_is_deterministic_whatever_the_order_of_the_machines()
    {
        var placed = new Dictionary<string, string> { ["s/0"] = "m2", ["s/1"] = "m1", ["s/2"] = "m2" };
        var answers = new[] { new[] { "m1", "m2", "m3", "m4" }, ["m4", "m3", "m2", "m1"], ["m2", "m4", "m1", "m3"] }
            .Select(machines => ServiceLogic.PlaceUnit(machines, placed))
            .ToList();

        Assert.All(answers, a => Assert.Equal("m3", a));
    }

    [Fact]
    public void PlaceUnit_picks_the_least_loaded_machine_and_ignores_units_on_machines_gone()
    {
        var placed = new Dictionary<string, string> { ["s/0"] = "m1", ["s/1"] = "m1", ["s/2"] = "gone", ["s/3"] = "gone", ["s/4"] = "m2" };
        Assert.Equal("m2", ServiceLogic.PlaceUnit(["m1", "m2"], placed));
    }

    [Fact]
    public void PlaceUnit_on_one_machine_always_picks_it()
    {
        var placed = Enumerable.Range(0, 4).ToDictionary(n => $"s/{n}", _ => "only");
        Assert.Equal("only", ServiceLogic.PlaceUnit(["only"], placed));
    }
}
