namespace Ensemble.Units.Steps;

/// <summary>upgrading: run `upgrade-formula`, the first hook of the new formula, told the revision the unit ran before.</summary>
public sealed class UpgradeHookStep : IUnitStep
{
    public Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token) =>
        unit.HookAsync("upgrade-formula", state.Current!, state.PreviousRevision, token);
}
