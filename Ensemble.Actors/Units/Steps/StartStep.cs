namespace Ensemble.Units.Steps;

/// <summary>
/// starting: run `config-changed`, then `start`, of the current formula — after install and after an upgrade, so the
/// formula sees its configuration before it starts. Both hooks are redone after a crash (hooks are written to be).
/// </summary>
public sealed class StartStep : IUnitStep
{
    public const string ConfigChangedHook = "config-changed";

    public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token)
    {
        // Resolved past a failed install that never unpacked the formula: unpack it now.
        if (!Directory.Exists(unit.Paths.FormulaDirectory) && await unit.UnpackAsync(state.Current!, token) is { } failure)
            return failure;
        var version = await ConfigVersionAsync(unit);
        if (await unit.HookAsync(ConfigChangedHook, state.Current!, null, token) is { } configFailure) return configFailure;
        unit.DeliveredConfig.Value = version;
        return await unit.HookAsync("start", state.Current!, null, token);
    }

    /// <summary>
    /// The configuration version config-changed is about to deliver. Starting must not wait for the store: when it is
    /// out of reach, the version the agent's watch showed last will do (a newer one is delivered when the unit runs).
    /// </summary>
    private static async Task<int> ConfigVersionAsync(UnitStepContext unit)
    {
        try
        {
            return (await unit.Agent.Topology.GetConfigAsync(Topology.UnitNames.ServiceOf(unit.Unit))).Version;
        }
        catch (Exception ex) when (Coordination.StoreTrouble.IsTransient(ex))
        {
            return unit.KnownConfig.Value;
        }
    }
}
