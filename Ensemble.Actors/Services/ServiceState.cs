using System.Collections.Immutable;
using Ensemble.Formulas;
using Ensemble.Topology;
using static Ensemble.Services.ServiceEvents;

namespace Ensemble.Services;

/// <summary>An upgrade of a service in progress: which units wait, run, and finished how.</summary>
public sealed record UpgradeRun(
    string RunId,
    FormulaRef From,
    FormulaRef To,
    int MaxParallel,
    ImmutableList<string> Queued,
    ImmutableSortedSet<string> InFlight,
    ImmutableSortedSet<string> Succeeded,
    ImmutableSortedDictionary<string, string> Failed)
{
    /// <summary>A failed unit halts the rollout: units not yet started keep the old revision.</summary>
    public bool Halted => !Failed.IsEmpty;

    public bool Done => InFlight.IsEmpty && (Queued.IsEmpty || Halted);
}

/// <summary>What a service coordinator knows, rebuilt from its journal.</summary>
public sealed record ServiceState(
    string Name,
    FormulaRef? Formula,
    string? Repository,
    ImmutableSortedDictionary<string, string> Units,
    int NextUnitNumber,
    UpgradeRun? Upgrade)
{
    public static ServiceState Empty(string name) =>
        new(name, null, null, ImmutableSortedDictionary<string, string>.Empty, 0, null);

    public bool Deployed => Formula is not null;
}
