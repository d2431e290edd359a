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

/// <summary>The pure rules of a service coordinator: how events change its state and what to do next.</summary>
public static class ServiceLogic
{
    public static ServiceState Apply(ServiceState state, IServiceEvent e) => e switch
    {
        ServiceDeployed d => state with { Formula = d.Formula, Repository = d.Repository },
        UnitPlaced p => state with
        {
            Units = state.Units.SetItem(p.Unit, p.Machine),
            NextUnitNumber = Math.Max(state.NextUnitNumber, UnitNames.NumberOf(p.Unit) + 1),
        },
        UnitDestroyed d => state with
        {
            Units = state.Units.Remove(d.Unit),
            Upgrade = state.Upgrade is { } run ? run with { Queued = run.Queued.Remove(d.Unit) } : null,
        },
        UpgradeBegan b => state with
        {
            Formula = b.To,
            Repository = b.Repository,
            Upgrade = new UpgradeRun(b.RunId, b.From, b.To, b.MaxParallel, [.. b.Units],
                ImmutableSortedSet<string>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<string, string>.Empty),
        },
        UnitUpgradeLaunched l => WithRun(state, l.RunId, run => run with { Queued = run.Queued.Remove(l.Unit), InFlight = run.InFlight.Add(l.Unit) }),
        UnitUpgradeSucceeded s => WithRun(state, s.RunId, run => run with { InFlight = run.InFlight.Remove(s.Unit), Succeeded = run.Succeeded.Add(s.Unit) }),
        ServiceEvents.UnitUpgradeFailed f => WithRun(state, f.RunId, run => run with { InFlight = run.InFlight.Remove(f.Unit), Failed = run.Failed.SetItem(f.Unit, f.Cause) }),
        UpgradeEnded end => state.Upgrade?.RunId == end.RunId ? state with { Upgrade = null } : state,
        // Unit numbers are never reused, even by a service deployed again under the same name.
        ServiceRemoved => ServiceState.Empty(state.Name) with { NextUnitNumber = state.NextUnitNumber },
        _ => throw new ArgumentOutOfRangeException(nameof(e), e.GetType().Name, null),
    };

    /// <summary>The units to launch now so that at most MaxParallel upgrade at once.</summary>
    public static IReadOnlyList<string> NextLaunches(UpgradeRun run) =>
        run.Halted ? [] : run.Queued.Take(Math.Max(0, run.MaxParallel - run.InFlight.Count)).ToList();

    /// <summary>The machine for a new unit: the one with the fewest of this service's units, then by name.</summary>
    public static string? PlaceUnit(IReadOnlyCollection<string> machines, IReadOnlyDictionary<string, string> placed)
    {
        if (machines.Count == 0) return null;
        var load = machines.ToDictionary(m => m, _ => 0);
        foreach (var machine in placed.Values)
            if (load.ContainsKey(machine)) load[machine]++;
        return load.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).First().Key;
    }

    private static ServiceState WithRun(ServiceState state, string runId, Func<UpgradeRun, UpgradeRun> change) =>
        state.Upgrade is { } run && run.RunId == runId ? state with { Upgrade = change(run) } : state;
}
