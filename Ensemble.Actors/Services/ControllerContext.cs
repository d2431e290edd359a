using Ensemble.Formulas;
using Ensemble.Topology;

namespace Ensemble.Services;

/// <summary>Settings of the service coordinators, read from the ensemble.controller HOCON section.</summary>
public sealed record ControllerSettings(TimeSpan UnitUpgradeDeadline, TimeSpan AgentResendInterval)
{
    public static ControllerSettings Default { get; } = new(TimeSpan.FromMinutes(30), TimeSpan.FromSeconds(5));
}

/// <summary>What the service coordinators of a controller share.</summary>
public sealed record ControllerContext(TopologyStore Topology, IFormulaStorage Storage, ControllerSettings Settings);
