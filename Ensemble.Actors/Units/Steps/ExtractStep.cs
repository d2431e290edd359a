namespace Ensemble.Units.Steps;

/// <summary>extracting: replace the formula directory with the new formula (verified again); the data directory is kept.</summary>
public sealed class ExtractStep : IUnitStep
{
    public Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token) =>
        unit.UnpackAsync(state.Target!, token);
}
