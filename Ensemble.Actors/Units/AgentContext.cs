using Ensemble.Hooks;
using Ensemble.Topology;

namespace Ensemble.Units;

/// <summary>Settings of an agent node, read from the ensemble.agent HOCON section.</summary>
public sealed record AgentSettings(TimeSpan HookTimeout, DownloadRetryPolicy DownloadRetry)
{
    public static AgentSettings Default { get; } = new(ProcessHookRunner.DefaultTimeout, DownloadRetryPolicy.Default);
}

/// <summary>What the unit agents of one machine share.</summary>
public sealed record AgentContext(
    string Machine,
    string DataDirectory,
    TopologyStore Topology,
    FormulaCache Cache,
    IHookRunner Hooks,
    AgentSettings Settings,
    IUnitFaults Faults)
{
    public string UnitsDirectory => Path.Combine(DataDirectory, "units");
}
