using Ensemble.Formulas;
using Ensemble.Topology;

namespace Ensemble.Services;

/// <summary>
/// Settings of the service coordinators, read from the ensemble.controller HOCON section. SnapshotEvery: a
/// coordinator snapshots its state every that many journaled events and deletes what the snapshot replaces
/// (<see cref="JournalHygiene"/>); 0 keeps the whole history.
/// </summary>
public sealed record ControllerSettings(TimeSpan UnitUpgradeDeadline, TimeSpan AgentResendInterval, RequestLimits? Limits = null,
    int SnapshotEvery = JournalHygiene.DefaultSnapshotEvery)
{
    public static ControllerSettings Default { get; } = new(TimeSpan.FromMinutes(30), TimeSpan.FromSeconds(5));

    /// <summary>What one request may ask for.</summary>
    public RequestLimits RequestLimits => Limits ?? RequestLimits.Default;
}

/// <summary>
/// What the service coordinators of a controller share; JournalLocation names the journal in messages to an operator;
/// Machines is the controller node's machine registry (null where there is none, as in the test kit: then every
/// machine whose agent has a presence node counts as started).
/// </summary>
public sealed record ControllerContext(TopologyStore Topology, IFormulaStorage Storage, ControllerSettings Settings, string JournalLocation = "the journal",
    Akka.Actor.IActorRef? Machines = null)
{
    /// <summary>The caps every formula is held to here, with the revision limit an operator may have set.</summary>
    public FormulaLimits FormulaLimits => FormulaLimits.Default with { MaxRevision = Settings.RequestLimits.MaxRevision };
}
