namespace Ensemble.Units.Steps;

/// <summary>starting: run `start` of the current formula.</summary>
public sealed class StartStep : IUnitStep
{
    public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token)
    {
        // Resolved past a failed install that never unpacked the formula: unpack it now.
        if (!Directory.Exists(unit.Paths.FormulaDirectory) && await unit.UnpackAsync(state.Current!, token) is { } failure)
            return failure;
        return await unit.HookAsync("start", state.Current!, null, token);
    }
}
