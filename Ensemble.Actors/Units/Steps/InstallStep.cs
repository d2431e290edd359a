namespace Ensemble.Units.Steps;

/// <summary>installing: unpack the deployed formula (its data directory created empty), then run `install`.</summary>
public sealed class InstallStep : IUnitStep
{
    public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token) =>
        await unit.UnpackAsync(state.Target!, token) ?? await unit.HookAsync("install", state.Target!, null, token);
}
