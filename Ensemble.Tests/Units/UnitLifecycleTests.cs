using Ensemble.Formulas;
using Ensemble.Units;
using Xunit;

namespace Ensemble.Tests.Units;

public sealed class UnitLifecycleTests
{
    private const string Unit = "wordpress/0";

    private static readonly FormulaRef Rev1 = new(new FormulaId("wordpress", 1), new string('1', 64));
    private static readonly FormulaRef Rev2 = new(new FormulaId("wordpress", 2), new string('2', 64));
    private static readonly FormulaRef Rev3 = new(new FormulaId("wordpress", 3), new string('3', 64));

    private static UnitState Moved(UnitState state, UnitTrigger trigger)
    {
        var decision = UnitLifecycle.Decide(state, trigger);
        return Assert.IsType<UnitDecision.Moved>(decision).State;
    }

    private static UnitState Succeed(UnitState state) => Moved(state, UnitTrigger.Succeeded);

    /// <summary>A unit deployed at revision 1 and idle.</summary>
    private static UnitState RunningAtRev1() =>
        new(Unit, UnitPhase.Running, Rev1, null, UnitOperation.None, null, null, null);

    /// <summary>A unit upgrading from revision 1 to revision 2, standing in <paramref name="phase"/>.</summary>
    private static UnitState Upgrading(UnitPhase phase)
    {
        var state = Moved(RunningAtRev1(), new UnitTrigger.Upgrade(Rev2));
        while (state.Phase != phase)
        {
            Assert.NotEqual(UnitPhase.Running, state.Phase);
            state = Succeed(state);
        }
        return state;
    }

    // ---- deploy ----

    [Fact]
    public void Deploy_walks_pending_installing_starting_running_then_record_clears_the_operation()
    {
        var state = UnitState.New(Unit);
        Assert.Equal(UnitStep.None, UnitLifecycle.StepFor(state));

        state = Moved(state, new UnitTrigger.Deploy(Rev1));
        Assert.Equal(UnitPhase.Installing, state.Phase);
        Assert.Equal(UnitOperation.Deploy, state.Operation);
        Assert.Equal(Rev1, state.Target);
        Assert.Null(state.Current);
        Assert.Equal(UnitStep.Install, UnitLifecycle.StepFor(state));

        state = Succeed(state);
        Assert.Equal(UnitPhase.Starting, state.Phase);
        Assert.Equal(Rev1, state.Current);
        Assert.Equal(UnitStep.Start, UnitLifecycle.StepFor(state));

        state = Succeed(state);
        Assert.Equal(UnitPhase.Running, state.Phase);
        Assert.Equal(UnitOperation.Deploy, state.Operation);
        Assert.Equal(UnitStep.Record, UnitLifecycle.StepFor(state));

        state = Succeed(state);
        Assert.Equal(UnitPhase.Running, state.Phase);
        Assert.Equal(UnitOperation.None, state.Operation);
        Assert.Null(state.Target);
        Assert.Null(state.PreviousRevision);
        Assert.Equal(Rev1, state.Current);
        Assert.Equal(UnitStep.None, UnitLifecycle.StepFor(state));
        Assert.False(state.IsError);
    }

    [Fact]
    public void Deploy_again_while_deploying_or_after_deployed_is_unchanged()
    {
        var installing = Moved(UnitState.New(Unit), new UnitTrigger.Deploy(Rev1));
        Assert.Equal(installing, Assert.IsType<UnitDecision.Unchanged>(UnitLifecycle.Decide(installing, new UnitTrigger.Deploy(Rev1))).State);

        var running = RunningAtRev1();
        Assert.IsType<UnitDecision.Unchanged>(UnitLifecycle.Decide(running, new UnitTrigger.Deploy(Rev1)));
    }

    [Fact]
    public void Success_with_no_step_in_progress_is_rejected()
    {
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(RunningAtRev1(), UnitTrigger.Succeeded));
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(UnitState.New(Unit), UnitTrigger.Succeeded));
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(RunningAtRev1(), new UnitTrigger.StepFailed("boom")));
    }

    // ---- upgrade ----

    [Fact]
    public void Upgrade_walks_the_whole_path_and_switches_current_exactly_at_extraction()
    {
        var state = Moved(RunningAtRev1(), new UnitTrigger.Upgrade(Rev2));
        var expected = new (UnitPhase Phase, UnitStep Step, FormulaRef Current)[]
        {
            (UnitPhase.Downloading, UnitStep.Download, Rev1),
            (UnitPhase.Stopping, UnitStep.Stop, Rev1),
            (UnitPhase.Extracting, UnitStep.Extract, Rev1),
            (UnitPhase.UpgradingFormula, UnitStep.UpgradeHook, Rev2),
            (UnitPhase.Starting, UnitStep.Start, Rev2),
            (UnitPhase.Running, UnitStep.Record, Rev2),
        };
        foreach (var (phase, step, current) in expected)
        {
            Assert.Equal(phase, state.Phase);
            Assert.Equal(step, UnitLifecycle.StepFor(state));
            Assert.Equal(current, state.Current);
            Assert.Equal(Rev2, state.Target);
            Assert.Equal(UnitOperation.Upgrade, state.Operation);
            Assert.Equal(1, state.PreviousRevision);
            state = Succeed(state);
        }

        Assert.Equal(UnitPhase.Running, state.Phase);
        Assert.Equal(Rev2, state.Current);
        Assert.Equal(UnitOperation.None, state.Operation);
        Assert.Null(state.Target);
        Assert.Null(state.PreviousRevision);
    }

    [Theory]
    [InlineData(UnitPhase.Installing, UnitPhase.InstallError)]
    [InlineData(UnitPhase.Starting, UnitPhase.StartError)]
    [InlineData(UnitPhase.Stopping, UnitPhase.StopError)]
    [InlineData(UnitPhase.Downloading, UnitPhase.UpgradeError)]
    [InlineData(UnitPhase.Extracting, UnitPhase.UpgradeError)]
    [InlineData(UnitPhase.UpgradingFormula, UnitPhase.UpgradeError)]
    public void A_failed_step_lands_in_its_error_state_with_the_failed_step_and_cause(UnitPhase step, UnitPhase error)
    {
        var state = StandingIn(step);
        var failed = Moved(state, new UnitTrigger.StepFailed("hook exited with code 3"));

        Assert.Equal(error, failed.Phase);
        Assert.Equal(step, failed.FailedStep);
        Assert.Equal("hook exited with code 3", failed.Error);
        Assert.True(failed.IsError);
        Assert.Equal(UnitStep.None, UnitLifecycle.StepFor(failed));
        Assert.Equal(state.Current, failed.Current);
        Assert.Equal(state.Target, failed.Target);
        Assert.Equal(state.Operation, failed.Operation);
    }

    /// <summary>Installing is only reached by deploy; every other step is taken from the upgrade path.</summary>
    private static UnitState StandingIn(UnitPhase phase) =>
        phase == UnitPhase.Installing ? Moved(UnitState.New(Unit), new UnitTrigger.Deploy(Rev1)) : Upgrading(phase);

    [Theory]
    [InlineData(UnitPhase.Installing)]
    [InlineData(UnitPhase.Starting)]
    [InlineData(UnitPhase.Stopping)]
    [InlineData(UnitPhase.Downloading)]
    [InlineData(UnitPhase.Extracting)]
    [InlineData(UnitPhase.UpgradingFormula)]
    public void Resolve_with_retry_goes_back_to_the_failed_step(UnitPhase step)
    {
        var before = StandingIn(step);
        var failed = Moved(before, new UnitTrigger.StepFailed("boom"));

        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: true));

        Assert.Equal(step, resolved.Phase);
        Assert.Null(resolved.FailedStep);
        Assert.Null(resolved.Error);
        Assert.Equal(before, resolved);
    }

    [Theory]
    [InlineData(UnitPhase.Installing, UnitPhase.Starting)]
    [InlineData(UnitPhase.Starting, UnitPhase.Running)]
    [InlineData(UnitPhase.Stopping, UnitPhase.Extracting)]
    [InlineData(UnitPhase.Extracting, UnitPhase.Extracting)]
    [InlineData(UnitPhase.UpgradingFormula, UnitPhase.Starting)]
    public void Resolve_without_retry_continues_as_if_the_step_had_succeeded(UnitPhase step, UnitPhase next)
    {
        var failed = Moved(StandingIn(step), new UnitTrigger.StepFailed("boom"));

        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: false));

        Assert.Equal(next, resolved.Phase);
        Assert.Null(resolved.FailedStep);
        Assert.Null(resolved.Error);
        Assert.False(resolved.IsError);
    }

    [Fact]
    public void Resolving_a_failed_install_without_retry_counts_the_formula_as_installed()
    {
        var failed = Moved(Moved(UnitState.New(Unit), new UnitTrigger.Deploy(Rev1)), new UnitTrigger.StepFailed("boom"));
        Assert.Null(failed.Current);

        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: false));

        Assert.Equal(UnitPhase.Starting, resolved.Phase);
        Assert.Equal(Rev1, resolved.Current);
    }

    [Fact]
    public void Resolving_a_failed_extraction_without_retry_still_redoes_it_on_the_old_formula()
    {
        var failed = Moved(Upgrading(UnitPhase.Extracting), new UnitTrigger.StepFailed("disk full"));
        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: false));

        Assert.Equal(UnitPhase.Extracting, resolved.Phase);
        Assert.Equal(UnitStep.Extract, UnitLifecycle.StepFor(resolved));
        Assert.Equal(Rev1, resolved.Current);
        Assert.Equal(Rev2, resolved.Target);
    }

    [Fact]
    public void Resolving_a_failed_download_without_retry_abandons_the_upgrade_on_the_old_formula()
    {
        var failed = Moved(Upgrading(UnitPhase.Downloading), new UnitTrigger.StepFailed("storage unreachable"));

        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: false));

        Assert.Equal(RunningAtRev1(), resolved);
        Assert.Equal(UnitStep.None, UnitLifecycle.StepFor(resolved));
    }

    [Fact]
    public void Resolving_an_upgrade_hook_failure_without_retry_keeps_the_new_formula_and_starts()
    {
        var failed = Moved(Upgrading(UnitPhase.UpgradingFormula), new UnitTrigger.StepFailed("boom"));
        var resolved = Moved(failed, new UnitTrigger.Resolve(Retry: false));

        Assert.Equal(UnitPhase.Starting, resolved.Phase);
        Assert.Equal(Rev2, resolved.Current);
        Assert.Equal(1, resolved.PreviousRevision);
        Assert.Equal(UnitOperation.Upgrade, resolved.Operation);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resolve_outside_an_error_state_is_rejected(bool retry)
    {
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(RunningAtRev1(), new UnitTrigger.Resolve(retry)));
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(Upgrading(UnitPhase.Stopping), new UnitTrigger.Resolve(retry)));
    }

    [Theory]
    [InlineData(UnitPhase.Installing)]
    [InlineData(UnitPhase.Starting)]
    [InlineData(UnitPhase.Stopping)]
    public void Upgrade_is_rejected_in_a_non_upgrade_error_state(UnitPhase step)
    {
        var failed = Moved(StandingIn(step), new UnitTrigger.StepFailed("boom"));
        Assert.NotEqual(UnitPhase.UpgradeError, failed.Phase);

        var rejected = Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(failed, new UnitTrigger.Upgrade(Rev3)));
        Assert.Contains("resolved", rejected.Reason);
        Assert.Contains(UnitLifecycle.StateName(failed.Phase), rejected.Reason);
    }

    [Theory]
    [InlineData(UnitPhase.Downloading)]
    [InlineData(UnitPhase.Stopping)]
    [InlineData(UnitPhase.Extracting)]
    [InlineData(UnitPhase.UpgradingFormula)]
    [InlineData(UnitPhase.Starting)]
    public void Upgrade_to_another_target_is_rejected_while_an_upgrade_runs(UnitPhase phase)
    {
        var rejected = Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(Upgrading(phase), new UnitTrigger.Upgrade(Rev3)));
        Assert.Contains("wait", rejected.Reason);
    }

    [Fact]
    public void Upgrade_is_rejected_while_a_deploy_runs()
    {
        var installing = Moved(UnitState.New(Unit), new UnitTrigger.Deploy(Rev1));
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(installing, new UnitTrigger.Upgrade(Rev2)));

        var starting = Succeed(installing);
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(starting, new UnitTrigger.Upgrade(Rev2)));

        var recording = Succeed(starting);
        Assert.Equal(UnitStep.Record, UnitLifecycle.StepFor(recording));
        Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(recording, new UnitTrigger.Upgrade(Rev2)));
    }

    [Theory]
    [InlineData(UnitPhase.Downloading)]
    [InlineData(UnitPhase.Stopping)]
    [InlineData(UnitPhase.Extracting)]
    [InlineData(UnitPhase.UpgradingFormula)]
    [InlineData(UnitPhase.Starting)]
    [InlineData(UnitPhase.Running)]
    public void Upgrade_to_the_same_target_while_upgrading_is_unchanged(UnitPhase phase)
    {
        var state = Upgrading(phase);
        var decision = Assert.IsType<UnitDecision.Unchanged>(UnitLifecycle.Decide(state, new UnitTrigger.Upgrade(Rev2)));
        Assert.Equal(state, decision.State);
    }

    [Fact]
    public void Upgrade_to_the_same_target_from_upgrade_error_is_rejected_so_the_requester_hears_of_the_failure()
    {
        var failed = Moved(Upgrading(UnitPhase.UpgradingFormula), new UnitTrigger.StepFailed("boom"));
        var rejected = Assert.IsType<UnitDecision.Rejected>(UnitLifecycle.Decide(failed, new UnitTrigger.Upgrade(Rev2)));
        Assert.Contains("resolved", rejected.Reason);
    }

    [Fact]
    public void Upgrade_to_the_formula_already_running_is_unchanged()
    {
        var state = RunningAtRev1();
        Assert.Equal(state, Assert.IsType<UnitDecision.Unchanged>(UnitLifecycle.Decide(state, new UnitTrigger.Upgrade(Rev1))).State);
    }

    [Theory]
    [InlineData(UnitPhase.Downloading)]
    [InlineData(UnitPhase.Extracting)]
    [InlineData(UnitPhase.UpgradingFormula)]
    public void Upgrade_from_upgrade_error_to_a_new_target_restarts_at_downloading_keeping_previous_revision(UnitPhase step)
    {
        var failed = Moved(Upgrading(step), new UnitTrigger.StepFailed("boom"));
        Assert.Equal(UnitPhase.UpgradeError, failed.Phase);

        var restarted = Moved(failed, new UnitTrigger.Upgrade(Rev3));

        Assert.Equal(UnitPhase.Downloading, restarted.Phase);
        Assert.Equal(Rev3, restarted.Target);
        Assert.Equal(UnitOperation.Upgrade, restarted.Operation);
        // The revision before the whole operation, not the half-installed one.
        Assert.Equal(1, restarted.PreviousRevision);
        Assert.Null(restarted.FailedStep);
        Assert.Null(restarted.Error);
        Assert.Equal(failed.Current, restarted.Current);
    }

    [Fact]
    public void Upgrade_from_upgrade_error_to_a_new_target_then_completes_on_that_target()
    {
        var failed = Moved(Upgrading(UnitPhase.UpgradingFormula), new UnitTrigger.StepFailed("boom"));
        var state = Moved(failed, new UnitTrigger.Upgrade(Rev3));
        while (UnitLifecycle.StepFor(state) != UnitStep.Record) state = Succeed(state);
        Assert.Equal(1, state.PreviousRevision);
        state = Succeed(state);

        Assert.Equal(new UnitState(Unit, UnitPhase.Running, Rev3, null, UnitOperation.None, null, null, null), state);
    }

    [Fact]
    public void Upgrade_sets_previous_revision_from_the_current_formula()
    {
        var state = Moved(RunningAtRev1(), new UnitTrigger.Upgrade(Rev2));
        Assert.Equal(1, state.PreviousRevision);
    }

    // ---- naming and steps ----

    [Theory]
    [InlineData(UnitPhase.Pending, "pending")]
    [InlineData(UnitPhase.Installing, "installing")]
    [InlineData(UnitPhase.Starting, "starting")]
    [InlineData(UnitPhase.Running, "running")]
    [InlineData(UnitPhase.Downloading, "downloading")]
    [InlineData(UnitPhase.Stopping, "stopping")]
    [InlineData(UnitPhase.Extracting, "extracting")]
    [InlineData(UnitPhase.UpgradingFormula, "upgrading")]
    [InlineData(UnitPhase.InstallError, "install_error")]
    [InlineData(UnitPhase.StartError, "start_error")]
    [InlineData(UnitPhase.StopError, "stop_error")]
    [InlineData(UnitPhase.UpgradeError, "upgrade_error")]
    public void StateName_is_the_store_spelling(UnitPhase phase, string name) =>
        Assert.Equal(name, UnitLifecycle.StateName(phase));

    [Theory]
    [InlineData(UnitPhase.Pending, UnitOperation.None, UnitStep.None)]
    [InlineData(UnitPhase.Installing, UnitOperation.Deploy, UnitStep.Install)]
    [InlineData(UnitPhase.Starting, UnitOperation.Deploy, UnitStep.Start)]
    [InlineData(UnitPhase.Starting, UnitOperation.Upgrade, UnitStep.Start)]
    [InlineData(UnitPhase.Running, UnitOperation.None, UnitStep.None)]
    [InlineData(UnitPhase.Running, UnitOperation.Deploy, UnitStep.Record)]
    [InlineData(UnitPhase.Running, UnitOperation.Upgrade, UnitStep.Record)]
    [InlineData(UnitPhase.Downloading, UnitOperation.Upgrade, UnitStep.Download)]
    [InlineData(UnitPhase.Stopping, UnitOperation.Upgrade, UnitStep.Stop)]
    [InlineData(UnitPhase.Extracting, UnitOperation.Upgrade, UnitStep.Extract)]
    [InlineData(UnitPhase.UpgradingFormula, UnitOperation.Upgrade, UnitStep.UpgradeHook)]
    [InlineData(UnitPhase.InstallError, UnitOperation.Deploy, UnitStep.None)]
    [InlineData(UnitPhase.StartError, UnitOperation.Upgrade, UnitStep.None)]
    [InlineData(UnitPhase.StopError, UnitOperation.Upgrade, UnitStep.None)]
    [InlineData(UnitPhase.UpgradeError, UnitOperation.Upgrade, UnitStep.None)]
    public void StepFor_maps_each_phase_to_its_step(UnitPhase phase, UnitOperation operation, UnitStep step)
    {
        var state = new UnitState(Unit, phase, Rev1, Rev2, operation, 1, null, null);
        Assert.Equal(step, UnitLifecycle.StepFor(state));
    }

    [Theory]
    [InlineData(UnitPhase.InstallError, true)]
    [InlineData(UnitPhase.StartError, true)]
    [InlineData(UnitPhase.StopError, true)]
    [InlineData(UnitPhase.UpgradeError, true)]
    [InlineData(UnitPhase.Running, false)]
    [InlineData(UnitPhase.Pending, false)]
    [InlineData(UnitPhase.UpgradingFormula, false)]
    public void IsError_is_true_only_for_error_phases(UnitPhase phase, bool error) =>
        Assert.Equal(error, UnitLifecycle.IsError(phase));
}
