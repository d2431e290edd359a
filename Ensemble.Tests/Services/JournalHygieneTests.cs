using System.Collections.Immutable;
using System.Text.Json;
using Akka.Actor;
using Ensemble.Formulas;
using Ensemble.Hosting;
using Ensemble.Serialization;
using Ensemble.Services;
using Ensemble.Topology;
using Xunit;
using static Ensemble.Services.ServiceEvents;

namespace Ensemble.Tests.Services;

/// <summary>When a coordinator snapshots and deletes, how its snapshot is serialized, and how a recovered journal is reconciled with the store.</summary>
public sealed class JournalHygieneTests : IAsyncLifetime
{
    private static readonly FormulaRef Rev1 = new(new FormulaId("wordpress", 1), new string('a', 64));
    private static readonly FormulaRef Rev2 = new(new FormulaId("wordpress", 2), new string('b', 64));

    private ActorSystem _system = null!;

    public Task InitializeAsync()
    {
        _system = ActorSystem.Create("hygiene-test", EnsembleConfig.Defaults);
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _system.Terminate();

    private static ServiceState Replay(params IServiceEvent[] events) => events.Aggregate(ServiceState.Empty("wordpress"), ServiceLogic.Apply);

    private static ServiceState Deployed(params string[] units) => Replay(
        [new ServiceCreated(Rev1, "/repo"), .. units.Select(u => (IServiceEvent)new UnitPlaced(u, "m0"))]);

    [Theory]
    [InlineData(99, 0, 100, false)]
    [InlineData(100, 0, 100, true)]
    [InlineData(250, 200, 100, false)]
    [InlineData(300, 200, 100, true)]
    [InlineData(10_000, 0, 0, false)]
    [InlineData(10_000, 0, -1, false)]
    public void A_snapshot_is_due_every_n_events_after_the_last_and_never_when_off(long last, long snapshot, int every, bool due) =>
        Assert.Equal(due, JournalHygiene.SnapshotDue(last, snapshot, every));

    [Fact]
    public void A_snapshot_makes_the_events_it_covers_and_older_snapshots_redundant_but_never_itself() =>
        Assert.Equal((300L, 299L), JournalHygiene.Redundant(300));

    [Fact]
    public void A_snapshot_of_a_service_mid_upgrade_round_trips_through_akka_serialization_under_its_manifest()
    {
        var state = Replay(
            new ServiceCreated(Rev1, "/repo"),
            new UnitPlaced("wordpress/0", "m0"), new UnitPlaced("wordpress/1", "m1"), new UnitPlaced("wordpress/2", "m0"), new UnitPlaced("wordpress/10", "m1"),
            new UnitDeleted("wordpress/1"),
            new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0", "wordpress/2", "wordpress/10"], 2),
            new UnitUpgradeLaunched("run-1", "wordpress/0"), new UnitUpgradeLaunched("run-1", "wordpress/2"),
            new UnitUpgradeSucceeded("run-1", "wordpress/0"),
            new UnitUpgradeFailed("run-1", "wordpress/2", "upgrade_error: \"quoted\"\nsecond line ✓"));
        var snapshot = new ServiceSnapshot(state);

        var serializer = Assert.IsType<EnsembleSerializer>(_system.Serialization.FindSerializerFor(snapshot));
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, snapshot);
        var bytes = serializer.ToBinary(snapshot);
        var copy = Assert.IsType<ServiceSnapshot>(_system.Serialization.Deserialize(bytes, serializer.Identifier, manifest)).State;

        Assert.Equal("svc.snapshot", manifest);
        Assert.DoesNotContain("Ensemble.", System.Text.Encoding.UTF8.GetString(bytes));
        Assert.Equal(state.Name, copy.Name);
        Assert.Equal(state.Formula, copy.Formula);
        Assert.Equal(state.Repository, copy.Repository);
        Assert.Equal(state.Units, copy.Units);
        Assert.Equal(state.NextUnitNumber, copy.NextUnitNumber);
        var (run, copied) = (state.Upgrade!, copy.Upgrade!);
        Assert.Equal((run.RunId, run.From, run.To, run.MaxParallel), (copied.RunId, copied.From, copied.To, copied.MaxParallel));
        Assert.Equal(run.Queued, copied.Queued);
        Assert.Equal(run.InFlight, copied.InFlight);
        Assert.Equal(run.Succeeded, copied.Succeeded);
        Assert.Equal(run.Failed, copied.Failed);
        // The copy goes on as the original would: the same next launches, the same state after the next event.
        Assert.Equal(ServiceLogic.NextLaunches(run), ServiceLogic.NextLaunches(copied));
        var next = new UnitUpgradeSucceeded("run-1", "wordpress/10");
        Assert.Equal(JsonSerializer.Serialize(ServiceLogic.Apply(state, next)), JsonSerializer.Serialize(ServiceLogic.Apply(copy, next)));
    }

    [Fact]
    public void A_snapshot_of_a_service_never_deployed_round_trips()
    {
        var serializer = _system.Serialization.FindSerializerFor(new ServiceSnapshot(ServiceState.Empty("x")));
        var copy = (ServiceSnapshot)_system.Serialization.Deserialize(serializer.ToBinary(new ServiceSnapshot(ServiceState.Empty("x") with { NextUnitNumber = 7 })),
            serializer.Identifier, "svc.snapshot");
        Assert.False(copy.State.Deployed);
        Assert.Null(copy.State.Upgrade);
        Assert.Empty(copy.State.Units);
        Assert.Equal(7, copy.State.NextUnitNumber);
    }

    // ---- Reconcile ----

    private static ServiceRecord Record(bool dying = false) => new("wordpress", "local:wordpress-1", Rev1.Sha256, "/repo", dying);

    private static UnitRecord Unit(string name, string machine = "m0", bool dying = false) =>
        new(name, "local:wordpress-1", UnitPhase.Running, machine, Sha256: Rev1.Sha256, Dying: dying);

    [Fact]
    public void A_journal_that_agrees_with_the_store_gets_no_events() =>
        Assert.Empty(ServiceLogic.Reconcile(Deployed("wordpress/0", "wordpress/1"), Record(), [Unit("wordpress/0"), Unit("wordpress/1")]));

    [Fact]
    public void A_service_never_deployed_and_not_in_the_store_gets_no_events() =>
        Assert.Empty(ServiceLogic.Reconcile(ServiceState.Empty("wordpress"), null, []));

    [Fact]
    public void A_deploy_the_journal_missed_is_adopted_with_the_stores_formula_and_units_in_unit_order()
    {
        var events = ServiceLogic.Reconcile(ServiceState.Empty("wordpress"), Record(), [Unit("wordpress/10", "m1"), Unit("wordpress/2"), Unit("wordpress/0", "m1")]);

        Assert.Equal<IServiceEvent>(
            [new ServiceCreated(Rev1, "/repo"),
             new UnitPlaced("wordpress/0", "m1"), new UnitPlaced("wordpress/2", "m0"), new UnitPlaced("wordpress/10", "m1")],
            events);
        var state = events.Aggregate(ServiceState.Empty("wordpress"), ServiceLogic.Apply);
        Assert.True(state.Deployed);
        Assert.Equal(11, state.NextUnitNumber);
    }

    [Fact]
    public void Units_added_or_removed_in_the_store_alone_are_placed_or_deleted_and_a_dying_unit_counts_as_removed() =>
        Assert.Equal<IServiceEvent>(
            [new UnitPlaced("wordpress/3", "m1"), new UnitDeleted("wordpress/1"), new UnitDeleted("wordpress/2")],
            ServiceLogic.Reconcile(Deployed("wordpress/0", "wordpress/1", "wordpress/2"), Record(),
                [Unit("wordpress/0"), Unit("wordpress/2", dying: true), Unit("wordpress/3", "m1")]));

    [Fact]
    public void A_service_record_naming_a_revision_no_upgrade_began_for_is_restored_to_the_journals()
    {
        var bumped = Record() with { Formula = "local:wordpress-2", Sha256 = Rev2.Sha256 };
        Assert.Equal(Record(), ServiceLogic.RecordToRestore(Deployed("wordpress/0"), bumped));
        Assert.Null(ServiceLogic.RecordToRestore(Deployed("wordpress/0"), Record()));
        Assert.Null(ServiceLogic.RecordToRestore(Deployed("wordpress/0"), bumped with { Dying = true }));
        Assert.Null(ServiceLogic.RecordToRestore(ServiceState.Empty("wordpress"), bumped));
        // While a run is in progress the record names its target, as it should.
        var upgrading = ServiceLogic.Apply(Deployed("wordpress/0"), new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0"], 1));
        Assert.Null(ServiceLogic.RecordToRestore(upgrading, bumped));
    }

    [Fact]
    public void A_service_gone_or_dying_in_the_store_is_removed_from_the_journal()
    {
        Assert.Equal<IServiceEvent>([new ServiceRemoved()], ServiceLogic.Reconcile(Deployed("wordpress/0"), null, []));
        Assert.Equal<IServiceEvent>([new ServiceRemoved()], ServiceLogic.Reconcile(Deployed("wordpress/0"), Record(dying: true), [Unit("wordpress/0", dying: true)]));
        Assert.Empty(ServiceLogic.Reconcile(ServiceState.Empty("wordpress"), Record(dying: true), [Unit("wordpress/0", dying: true)]));
    }
}
