namespace Ensemble.Units.Steps;

/// <summary>
/// running, operation finished: record in the shared topology the formula the unit now runs, clearing its
/// upgrade flag in the same write. While the store is out of reach the agent runs this step again with backoff.
/// </summary>
public sealed class RecordStep : IUnitStep
{
    public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token)
    {
        await unit.Agent.Topology.CompleteUpgradeAsync(unit.Unit, state.Current!.Id.ToString(), state.Current.Sha256);
        return null;
    }
}
