using Ensemble.Formulas;
using Ensemble.Services;
using Ensemble.Tests.Support;
using Ensemble.Topology;
using Microsoft.Data.Sqlite;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

/// <summary>
/// The coordinator writes the store, then its journal: a journal write that fails between the two (the coordinator
/// stops, as after a crash) leaves the store ahead, and the restarted controller reconciles — the service is
/// consistent, its units run, a later upgrade works, nothing is duplicated.
/// </summary>
public sealed class JournalCrashPointTests(ITestOutputHelper output) : EnvironmentTest(output, directory => JournalFaults.For(directory).Config)
{
    private JournalFaults Faults => JournalFaults.For(Root);

    /// <summary>Asks, with the journal write of the first matching event failing; the request is refused and the store holds its change.</summary>
    private async Task CrashBeforeJournalingAsync<TEvent>(IServiceCommand request)
    {
        Faults.FailNextWriteOf(e => e is TEvent);
        var failed = Faults.Failed;
        Assert.IsType<CommandRejected>(await Env.AskAsync<object>(request));
        Assert.Equal(failed + 1, Faults.Failed);
        await Env.RestartControllerAsync();
    }

    private async Task UpgradeEveryUnitOnceAsync(string service, int revision, IReadOnlyList<string> units)
    {
        TestFormulas.Write(Repository, service, revision);
        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync(service));
        Assert.Equal(units.Order(), started.Units.Order());
        await WaitForUnitsAsync(units, u => u.Formula == $"local:{service}-{revision}" && u.State == UnitPhase.Running, $"every unit on revision {revision}");
        await WaitForUpgradeToEndAsync(service);
        foreach (var unit in units)
            Assert.Equal(1, TestFormulas.HookTrace(await DataDirAsync(unit)).Count(l => l == $"upgrade-formula {revision} begin"));
        Assert.Equal(units.Order(), (await Env.Topology.ListUnitsAsync(service)).Select(u => u.Name).Order());
    }

    [Fact]
    public async Task A_deploy_whose_journal_write_failed_after_the_store_write_is_adopted_on_restart()
    {
        TestFormulas.Write(Repository, "app", 1);
        Faults.FailNextWriteOf(e => e is ServiceEvents.ServiceCreated);
        Assert.IsType<CommandRejected>(await Env.DeployAsync("app", "app", Repository, 2));
        Assert.Equal(1, Faults.Failed);
        Assert.NotNull(await Env.Topology.GetServiceAsync("app"));
        await Env.RestartControllerAsync();

        string[] units = ["app/0", "app/1"];
        await WaitForUnitsAsync(units, u => u.State == UnitPhase.Running && u.Formula == "local:app-1", "both units to run");
        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("app"));
        Assert.Equal(new FormulaId("app", 1), status.Target);
        var again = Assert.IsType<CommandRejected>(await Env.DeployAsync("app", "app", Repository, 2));
        Assert.Equal(RejectionKind.Conflict, again.Kind);
        foreach (var unit in units)
            Assert.Equal(1, TestFormulas.HookTrace(await DataDirAsync(unit)).Count(l => l == "install 1 begin"));

        await UpgradeEveryUnitOnceAsync("app", 2, units);
    }

    [Fact]
    public async Task Units_added_in_the_store_alone_are_adopted_and_units_removed_there_are_dropped()
    {
        TestFormulas.Write(Repository, "app", 1);
        await DeployAsync("app", 2);

        await CrashBeforeJournalingAsync<ServiceEvents.UnitPlaced>(new AddUnits("app", 1));
        await WaitForUnitsAsync(["app/2"], u => u.State == UnitPhase.Running, "the added unit to run");
        await CrashBeforeJournalingAsync<ServiceEvents.UnitDeleted>(new DestroyUnit("app", "app/0"));
        Assert.Null(await Env.Topology.GetUnitAsync("app/0"));

        // The next unit gets a new number: the adopted one is known.
        var added = await Env.AskAsync<object>(new AddUnits("app", 1));
        Assert.True(added is UnitsAdded { Units: ["app/3"] }, added.ToString());
        await WaitForUnitsAsync(["app/3"], u => u.State == UnitPhase.Running, "the unit added after the restart to run");
        await UpgradeEveryUnitOnceAsync("app", 2, ["app/1", "app/2", "app/3"]);
    }

    [Fact]
    public async Task An_upgrade_whose_journal_write_failed_after_the_service_record_was_written_leaves_the_record_as_the_journal_says()
    {
        TestFormulas.Write(Repository, "app", 1);
        var units = await DeployAsync("app", 2);
        TestFormulas.Write(Repository, "app", 2);
        Faults.FailNextWriteOf(e => e is ServiceEvents.UpgradeBegan);
        Assert.IsType<CommandRejected>(await Env.UpgradeAsync("app"));
        Assert.Equal("local:app-2", (await Env.Topology.GetServiceAsync("app"))!.Formula);
        await Env.RestartControllerAsync();

        await LocalEnvironment.WaitUntilAsync(async () => (await Env.Topology.GetServiceAsync("app"))!.Formula == "local:app-1",
            Deadline, "the service record to name revision 1 again");
        foreach (var unit in units)
            Assert.DoesNotContain("upgrade-formula 2 begin", TestFormulas.HookTrace(await DataDirAsync(unit)));
        await UpgradeEveryUnitOnceAsync("app", 2, units);
    }

    [Fact]
    public async Task A_service_destroyed_in_the_store_alone_is_removed_and_can_be_deployed_again()
    {
        TestFormulas.Write(Repository, "app", 1);
        await DeployAsync("app", 1);

        await CrashBeforeJournalingAsync<ServiceEvents.ServiceRemoved>(new DestroyService("app"));
        Assert.Null(await Env.Topology.GetServiceAsync("app"));

        var deployed = await Env.DeployAsync("app", "app", Repository, 1);
        Assert.True(deployed is ServiceDeployed { Units: ["app/1"] }, deployed.ToString());
        string[] units = ["app/1"];
        await WaitForUnitsAsync(units, u => u.State == UnitPhase.Running, "the unit to run");
        await UpgradeEveryUnitOnceAsync("app", 2, units);
    }
}

/// <summary>Snapshots and deletions keep a coordinator's journal short, and what it recovers from them is what it had.</summary>
public sealed class JournalHygieneEnvironmentTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { Controller = defaults.Controller with { SnapshotEvery = 10 } };

    private long Count(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(Root, "journal.db")};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    private long LiveEvents(string persistenceIdLike) =>
        Count($"SELECT COUNT(*) FROM journal WHERE persistence_id LIKE '{persistenceIdLike}' AND deleted = 0");

    [Fact]
    public async Task After_three_upgrades_the_journal_holds_one_snapshot_and_a_short_tail_and_recovery_restores_the_service()
    {
        TestFormulas.Write(Repository, "app", 1);
        var units = await DeployAsync("app", 3);
        for (var revision = 2; revision <= 4; revision++)
        {
            TestFormulas.Write(Repository, "app", revision);
            Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("app"));
            await WaitForUnitsAsync(units, u => u.Formula == $"local:app-{revision}" && u.State == UnitPhase.Running, $"revision {revision}");
            await WaitForUpgradeToEndAsync("app");
        }

        // 4 events to deploy, 8 per upgrade (began, 3 launched, 3 succeeded, ended): 28, so snapshots at 10 and 20.
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(
                LiveEvents("service-app") <= 10 && LiveEvents("upgrade-%") == 0
                && Count("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'service-app'") == 1),
            Deadline, "the events and snapshots a snapshot replaces to be deleted");
        Assert.Equal(20, Count("SELECT MAX(sequence_number) FROM snapshot WHERE persistence_id = 'service-app'"));

        await Env.RestartControllerAsync();
        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("app"));
        Assert.Equal(new FormulaId("app", 4), status.Target);
        Assert.False(status.Running);
        Assert.Equal(["app/3"], Assert.IsType<UnitsAdded>(await Env.AskAsync<object>(new AddUnits("app", 1))).Units);
        await WaitForUnitsAsync(["app/3"], u => u.State == UnitPhase.Running, "the added unit to run");

        TestFormulas.Write(Repository, "app", 5);
        var started = Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("app"));
        Assert.Equal(["app/0", "app/1", "app/2", "app/3"], started.Units.Order());
        await WaitForUnitsAsync([.. units, "app/3"], u => u.Formula == "local:app-5" && u.State == UnitPhase.Running, "revision 5");
        foreach (var unit in units)
            Assert.Equal(1, TestFormulas.HookTrace(await DataDirAsync(unit)).Count(l => l == "upgrade-formula 5 begin"));
    }
}

/// <summary>A snapshot taken in the middle of an upgrade run, then a controller restart: the run resumes from it, every unit upgrades once.</summary>
public sealed class SnapshotMidUpgradeTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { Controller = defaults.Controller with { SnapshotEvery = 3 } };

    [Fact]
    public async Task The_upgrade_resumes_from_a_snapshot_taken_mid_run_and_every_unit_upgrades_once()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "api", 1);
        var units = await DeployAsync("api", 3);
        TestFormulas.Write(Repository, "api", 2);
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");

        // Events 1–4 deploy; 5 begins the run, 6 and 7 launch two units: snapshots at 3 and 6, the second mid-run.
        await Env.UpgradeAsync("api", maxParallel: 2);
        await LocalEnvironment.WaitUntilAsync(async () =>
            TestFormulas.HookTrace(await DataDirAsync("api/0")).Contains("upgrade-formula 2 begin")
            && TestFormulas.HookTrace(await DataDirAsync("api/1")).Contains("upgrade-formula 2 begin"),
            Deadline, "two units in their upgrade hook");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(
            Journal.Count(Root, "SELECT COALESCE(MAX(sequence_number), 0) FROM snapshot WHERE persistence_id = 'service-api'") == 6), Deadline, "the snapshot mid-run");

        await Env.RestartControllerAsync();
        var status = await Env.AskAsync<UpgradeStatus>(new GetUpgradeStatus("api"));
        Assert.True(status.Running);
        Assert.Equal(["api/0", "api/1"], status.InFlight);
        Assert.Equal(["api/2"], status.Queued);
        File.Delete(Path.Combine(control, "hold-upgrade-formula"));

        await WaitForUnitsAsync(units, u => u.Formula == "local:api-2" && u.State == UnitPhase.Running, "all units on revision 2");
        await WaitForUpgradeToEndAsync("api");
        foreach (var unit in units)
        {
            var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
            Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 begin"));
            Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 end"));
        }
        // Sagas journal nothing: the coordinator's journal is the one record of the run.
        Assert.Equal(0, Journal.Count(Root, "SELECT COUNT(*) FROM journal WHERE persistence_id NOT LIKE 'service-%'"));
    }
}

internal static class Journal
{
    public static long Count(string root, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(root, "journal.db")};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }
}
