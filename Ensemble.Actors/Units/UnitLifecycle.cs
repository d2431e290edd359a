using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>
/// Where a unit stands: its one state name, shared by the unit agent, the store, status and the CLI
/// (written everywhere but state.json by its store name, <see cref="UnitLifecycle.StateName"/>).
/// Every phase but Running and the error phases has one step to perform.
/// </summary>
[System.Text.Json.Serialization.JsonConverter(typeof(UnitPhaseNameConverter))]
public enum UnitPhase
{
    Pending,
    Installing,
    Starting,
    Running,
    Downloading,
    Stopping,
    Extracting,
    UpgradingFormula,
    InstallError,
    StartError,
    StopError,
    UpgradeError,
}

/// <summary>The operation a unit is carrying out, if any.</summary>
public enum UnitOperation { None, Deploy, Upgrade }

/// <summary>What a unit agent does on entering a phase.</summary>
public enum UnitStep { None, Install, Start, Download, Stop, Extract, UpgradeHook, Record }

/// <summary>
/// The unit's persisted lifecycle state: enough to resume or idempotently redo the current step after a crash.
/// Current is the formula in the unit's formula directory; Target the one an operation moves it to.
/// ConfigVersion: the version of the service's configuration the unit's config-changed hook last ran for (0 in
/// state files written before configuration existed), so a restarted agent runs it once for a change it missed.
/// </summary>
public sealed record UnitState(
    string Unit,
    UnitPhase Phase,
    FormulaRef? Current,
    FormulaRef? Target,
    UnitOperation Operation,
    int? PreviousRevision,
    UnitPhase? FailedStep,
    string? Error,
    int ConfigVersion = 0)
{
    public static UnitState New(string unit) => new(unit, UnitPhase.Pending, null, null, UnitOperation.None, null, null, null);

    public bool IsError => UnitLifecycle.IsError(Phase);
}

/// <summary>Something that moves a unit's lifecycle.</summary>
public abstract record UnitTrigger
{
    public sealed record Deploy(FormulaRef Formula) : UnitTrigger;
    public sealed record Upgrade(FormulaRef Formula) : UnitTrigger;
    public sealed record StepSucceeded : UnitTrigger;
    public sealed record StepFailed(string Cause) : UnitTrigger;
    public sealed record Resolve(bool Retry) : UnitTrigger;

    public static readonly StepSucceeded Succeeded = new();
}

/// <summary>The outcome of offering a trigger to the lifecycle.</summary>
public abstract record UnitDecision
{
    public sealed record Moved(UnitState State) : UnitDecision;
    /// <summary>Nothing to do: the unit already is, or is on its way to, what was asked.</summary>
    public sealed record Unchanged(UnitState State) : UnitDecision;
    public sealed record Rejected(string Reason) : UnitDecision;
}

/// <summary>
/// The unit lifecycle as one transition table, pure and tested without actors.
/// <code>
///   deploy:  pending → installing → starting → running
///   upgrade: running → downloading → stopping → extracting → upgrading → starting → running
///   a failed step:  installing → install_error, starting → start_error, stopping → stop_error,
///                   downloading | extracting | upgrading → upgrade_error
///   resolved --retry: back to the failed step;  resolved: on as if it had succeeded
/// </code>
/// </summary>
public static class UnitLifecycle
{
    private sealed record StepRow(UnitStep Step, UnitPhase OnSuccess, UnitPhase OnFailure);

    private static readonly IReadOnlyDictionary<UnitPhase, StepRow> Steps = new Dictionary<UnitPhase, StepRow>
    {
        [UnitPhase.Installing] = new(UnitStep.Install, UnitPhase.Starting, UnitPhase.InstallError),
        [UnitPhase.Starting] = new(UnitStep.Start, UnitPhase.Running, UnitPhase.StartError),
        [UnitPhase.Downloading] = new(UnitStep.Download, UnitPhase.Stopping, UnitPhase.UpgradeError),
        [UnitPhase.Stopping] = new(UnitStep.Stop, UnitPhase.Extracting, UnitPhase.StopError),
        [UnitPhase.Extracting] = new(UnitStep.Extract, UnitPhase.UpgradingFormula, UnitPhase.UpgradeError),
        [UnitPhase.UpgradingFormula] = new(UnitStep.UpgradeHook, UnitPhase.Starting, UnitPhase.UpgradeError),
    };

    /// <summary>True when the state has a step that can fail (and so an error state to fall into).</summary>
    public static bool CanFail(UnitState state) => Steps.ContainsKey(state.Phase);

    public static bool IsError(UnitPhase phase) =>
        phase is UnitPhase.InstallError or UnitPhase.StartError or UnitPhase.StopError or UnitPhase.UpgradeError;

    /// <summary>The step to perform in this state; Record means "write the finished operation to the store".</summary>
    public static UnitStep StepFor(UnitState state) =>
        Steps.TryGetValue(state.Phase, out var row) ? row.Step
        : state.Phase == UnitPhase.Running && state.Operation != UnitOperation.None ? UnitStep.Record
        : UnitStep.None;

    /// <summary>The name of a phase in the store and in status output.</summary>
    public static string StateName(UnitPhase phase) => phase switch
    {
        UnitPhase.UpgradingFormula => "upgrading",
        UnitPhase.InstallError => "install_error",
        UnitPhase.StartError => "start_error",
        UnitPhase.StopError => "stop_error",
        UnitPhase.UpgradeError => "upgrade_error",
        _ => phase.ToString().ToLowerInvariant(),
    };

    private static readonly IReadOnlyDictionary<string, UnitPhase> PhasesByName =
        Enum.GetValues<UnitPhase>().ToDictionary(StateName, StringComparer.Ordinal);

    /// <summary>The phase a store name stands for, or null for a name no phase has.</summary>
    public static UnitPhase? PhaseNamed(string? name) => name is not null && PhasesByName.TryGetValue(name, out var phase) ? phase : null;

    public static UnitDecision Decide(UnitState state, UnitTrigger trigger) => trigger switch
    {
        UnitTrigger.Deploy d => DecideDeploy(state, d.Formula),
        UnitTrigger.Upgrade u => DecideUpgrade(state, u.Formula),
        UnitTrigger.StepSucceeded => Succeed(state),
        UnitTrigger.StepFailed f => Fail(state, f.Cause),
        UnitTrigger.Resolve r => DecideResolve(state, r.Retry),
        _ => throw new ArgumentOutOfRangeException(nameof(trigger)),
    };

    private static UnitDecision DecideDeploy(UnitState state, FormulaRef formula)
    {
        if (state.Phase != UnitPhase.Pending)
            return state.Operation == UnitOperation.Deploy || state.Current is not null
                ? new UnitDecision.Unchanged(state)
                : new UnitDecision.Rejected($"unit {state.Unit} is {StateName(state.Phase)}, not pending");
        return new UnitDecision.Moved(state with
        {
            Phase = UnitPhase.Installing, Target = formula, Operation = UnitOperation.Deploy, Error = null, FailedStep = null,
        });
    }

    private static UnitDecision DecideUpgrade(UnitState state, FormulaRef formula)
    {
        if (state.Target?.Sha256 == formula.Sha256 && state.Operation == UnitOperation.Upgrade && !state.IsError)
            return new UnitDecision.Unchanged(state);
        if (state.Operation == UnitOperation.None && state.Phase == UnitPhase.Running && state.Current?.Sha256 == formula.Sha256)
            return new UnitDecision.Unchanged(state);

        var startable = (state.Phase == UnitPhase.Running && state.Operation == UnitOperation.None)
            // A unit whose upgrade failed may be sent a newer revision: the author's fix.
            || (state.Phase == UnitPhase.UpgradeError && state.Operation == UnitOperation.Upgrade && state.Target?.Sha256 != formula.Sha256);
        if (!startable)
            return new UnitDecision.Rejected(state.IsError
                ? $"unit {state.Unit} is in {StateName(state.Phase)}; run 'ensemble resolved {state.Unit}' first"
                : $"unit {state.Unit} is {StateName(state.Phase)}{(state.Target is { } t ? $" (to {t.Id})" : "")}; wait for it to finish");

        return new UnitDecision.Moved(state with
        {
            Phase = UnitPhase.Downloading,
            Target = formula,
            Operation = UnitOperation.Upgrade,
            PreviousRevision = state.Operation == UnitOperation.Upgrade ? state.PreviousRevision : state.Current?.Id.Revision,
            FailedStep = null,
            Error = null,
        });
    }

    private static UnitDecision Succeed(UnitState state)
    {
        if (Steps.TryGetValue(state.Phase, out var row))
        {
            var next = state with { Phase = row.OnSuccess };
            // After extraction the formula directory holds the target revision.
            if (state.Phase is UnitPhase.Extracting || (state.Phase is UnitPhase.Installing && state.Operation == UnitOperation.Deploy))
                next = next with { Current = state.Target };
            return new UnitDecision.Moved(next);
        }
        if (StepFor(state) == UnitStep.Record)
            return new UnitDecision.Moved(state with { Operation = UnitOperation.None, Target = null, PreviousRevision = null });
        return new UnitDecision.Rejected($"unit {state.Unit} has no step running in {StateName(state.Phase)}");
    }

    private static UnitDecision Fail(UnitState state, string cause)
    {
        if (!Steps.TryGetValue(state.Phase, out var row))
            return new UnitDecision.Rejected($"unit {state.Unit} has no step to fail in {StateName(state.Phase)}");
        return new UnitDecision.Moved(state with { Phase = row.OnFailure, FailedStep = state.Phase, Error = cause });
    }

    private static UnitDecision DecideResolve(UnitState state, bool retry)
    {
        if (!state.IsError || state.FailedStep is not { } failed)
            return new UnitDecision.Rejected($"unit {state.Unit} is {StateName(state.Phase)}, not in an error state; nothing to resolve");

        var cleared = state with { FailedStep = null, Error = null };
        if (retry) return new UnitDecision.Moved(cleared with { Phase = failed });

        return failed switch
        {
            // Nothing was stopped before the download failed: giving up leaves the unit as it was.
            UnitPhase.Downloading => new UnitDecision.Moved(cleared with
            {
                Phase = UnitPhase.Running, Operation = UnitOperation.None, Target = null, PreviousRevision = null,
            }),
            // The formula directory cannot be half-written: extraction is always redone.
            UnitPhase.Extracting => new UnitDecision.Moved(cleared with { Phase = UnitPhase.Extracting }),
            UnitPhase.Installing => new UnitDecision.Moved(cleared with { Phase = UnitPhase.Starting, Current = state.Target }),
            _ => new UnitDecision.Moved(cleared with { Phase = Steps[failed].OnSuccess }),
        };
    }
}
