namespace Ensemble.Units.Steps;

/// <summary>downloading: fetch and verify the new formula before anything is stopped.</summary>
public sealed class DownloadStep : IUnitStep
{
    public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token) =>
        (await unit.DownloadAsync(state.Target!, token)).Failure;
}
