using Ensemble.Topology;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Services;

/// <summary>
/// The per-unit view of an upgrade run that status and watchers read, built from the coordinator's run
/// (what is queued, in flight, done) and the last step each in-flight unit reported.
/// </summary>
public static class UpgradeViews
{
    public const string Queued = "queued";
    public const string Launched = "launched";
    public const string Upgraded = "upgraded";
    public const string Failed = "failed";
    public const string NotStarted = "not-started";

    /// <summary>The view of <paramref name="run"/>; <paramref name="finished"/> for the run that just ended.</summary>
    public static UpgradeView Of(UpgradeRun run, IReadOnlyDictionary<string, string> steps, bool finished = false)
    {
        var units = new List<UnitUpgradeState>();
        foreach (var unit in run.Queued) units.Add(new(unit, finished ? NotStarted : Queued));
        foreach (var unit in run.InFlight) units.Add(new(unit, steps.GetValueOrDefault(unit) ?? Launched));
        foreach (var unit in run.Succeeded) units.Add(new(unit, Upgraded));
        foreach (var (unit, cause) in run.Failed) units.Add(new(unit, Failed, cause));
        units.Sort((a, b) => UnitNames.NumberOf(a.Unit).CompareTo(UnitNames.NumberOf(b.Unit)));
        return new UpgradeView(run.From.Id, run.To.Id, finished, units);
    }

    /// <summary>What a watcher's copy of the view becomes when a unit reports: a step, <c>upgraded</c> or <c>failed: cause</c>.</summary>
    public static UpgradeView Apply(UpgradeView view, UnitUpgradeProgressed progressed)
    {
        var state = progressed.State.StartsWith(Failed + ": ", StringComparison.Ordinal)
            ? new UnitUpgradeState(progressed.Unit, Failed, progressed.State[(Failed.Length + 2)..])
            : new UnitUpgradeState(progressed.Unit, progressed.State);
        var units = view.Units.Where(u => u.Unit != progressed.Unit).Append(state)
            .OrderBy(u => UnitNames.NumberOf(u.Unit)).ToList();
        return view with { Units = units };
    }

    /// <summary>The view once the run has ended, as <see cref="UpgradeFinished"/> tells it.</summary>
    public static UpgradeView Apply(UpgradeView view, UpgradeFinished finished)
    {
        var units = view.Units.Select(u => u.Unit)
            .Concat(finished.Succeeded).Concat(finished.Failed.Keys).Concat(finished.NotStarted)
            .Distinct()
            .Select(unit =>
                finished.Succeeded.Contains(unit) ? new UnitUpgradeState(unit, Upgraded)
                : finished.Failed.TryGetValue(unit, out var cause) ? new UnitUpgradeState(unit, Failed, cause)
                : finished.NotStarted.Contains(unit) ? new UnitUpgradeState(unit, NotStarted)
                : view.Units.First(u => u.Unit == unit))
            .OrderBy(u => UnitNames.NumberOf(u.Unit)).ToList();
        return view with { Finished = true, Units = units };
    }
}
