using Ensemble.Hooks;
using Ensemble.Topology;

namespace Ensemble.Units;

/// <summary>Settings of an agent node, read from the ensemble.agent HOCON section.</summary>
public sealed record AgentSettings(TimeSpan HookTimeout, DownloadRetryPolicy DownloadRetry, int? MaxParallel = null)
{
    public static AgentSettings Default { get; } = new(ProcessHookRunner.DefaultTimeout, DownloadRetryPolicy.Default);

    /// <summary>How many hooks of the machine may run at once.</summary>
    public int MaxParallelHooks => MaxParallel is > 0 and var n ? n : ProcessHookRunner.DefaultMaxParallel;
}

/// <summary>What the unit agents of one machine share.</summary>
public sealed record AgentContext(
    string Machine,
    string DataDirectory,
    TopologyStore Topology,
    FormulaCache Cache,
    IHookRunner Hooks,
    AgentSettings Settings,
    IReadOnlyDictionary<UnitStep, Steps.IUnitStep> Steps,
    Hooks.Tools.UnitHookTools? Tools = null)
{
    public string UnitsDirectory => UnitPaths.UnitsDirectory(DataDirectory);
}
