namespace Ensemble.Units.Steps;

/// <summary>stopping: run `stop` of the formula the unit runs now (the old one, during an upgrade).</summary>
public sealed class StopStep : IUnitStep
{
    public Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token) =>
        unit.HookAsync("stop", state.Current!, null, token);
}
