using System.Collections.Immutable;
using Ensemble.Topology;
using static Ensemble.Services.ServiceEvents;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Services;

/// <summary>
/// The pure rules of a service coordinator: which requests it accepts, how events change its state and
/// what to do next. The actor only persists, schedules and talks.
/// </summary>
public static class ServiceLogic
{
    /// <summary>
    /// Why the coordinator refuses <paramref name="command"/> as things stand, or null when it goes ahead.
    /// Every limit and every fact the request contradicts is checked here, before anything changes.
    /// </summary>
    public static CommandRejected? Check(ServiceState state, IServiceCommand command, RequestLimits limits)
    {
        var name = state.Name;
        CommandRejected Reject(RejectionKind kind, string reason) => new(name, kind, reason);
        CommandRejected NotDeployed() =>
            Reject(RejectionKind.NotFound, $"service '{name}' is not deployed; deploy it first or check the name with 'ensemble status'");
        CommandRejected? UnknownUnit(string unit) => state.Units.ContainsKey(unit) ? null
            : Reject(RejectionKind.NotFound, $"unit '{unit}' does not exist; see 'ensemble status' for the units of {name}");

        switch (command)
        {
            case PrepareDeploy prepare:
                return CheckDeploy(state, prepare.Units, prepare.Repository, limits, Reject);
            case DeployService deploy:
                return CheckDeploy(state, deploy.Units, deploy.Repository, limits, Reject)
                    ?? CheckFormula(deploy.Formula, limits, Reject);
            case AddUnits add:
                return !state.Deployed ? NotDeployed() : CheckUnitCount(add.Count, state.Units.Count, limits, Reject);
            case DestroyUnit destroy:
                if (!state.Deployed) return NotDeployed();
                if (UnknownUnit(destroy.Unit) is { } unknown) return unknown;
                return state.Upgrade is { } inFlight && inFlight.InFlight.Contains(destroy.Unit)
                    ? Reject(RejectionKind.Conflict, $"unit '{destroy.Unit}' is being upgraded; remove it when the upgrade has finished")
                    : null;
            case DestroyService:
                if (!state.Deployed) return NotDeployed();
                return state.Upgrade is { } running
                    ? Reject(RejectionKind.Conflict, $"an upgrade of '{name}' to {running.To.Id} is running; wait for it to finish before destroying the service")
                    : null;
            case SetConfig or GetConfig:
                return !state.Deployed ? NotDeployed() : null;
            case ResolveUnit resolve:
                return !state.Deployed ? NotDeployed() : UnknownUnit(resolve.Unit);
            case PrepareUpgrade prepare:
                return !state.Deployed ? NotDeployed()
                    : CheckUpgrade(state, prepare.Repository, prepare.Revision, prepare.Units, prepare.MaxParallel, limits, Reject);
            case UpgradeFormula upgrade:
                if (!state.Deployed) return NotDeployed();
                if (CheckUpgrade(state, upgrade.Repository, null, upgrade.Units, upgrade.MaxParallel, limits, Reject) is { } refused) return refused;
                if (upgrade.Deployed != state.Formula)
                    return Reject(RejectionKind.Conflict,
                        $"'{name}' now runs {state.Formula!.Id} (sha256 {state.Formula.Sha256[..12]}), not {upgrade.Deployed.Id} as when this upgrade was prepared; run upgrade-formula again");
                if (upgrade.Target is not { } target) return null;
                if (target.Id.Name != state.Formula!.Id.Name)
                    return Reject(RejectionKind.InvalidInput,
                        $"'{name}' runs formula '{state.Formula.Id.Name}', and an upgrade keeps its formula; deploy '{target.Id.Name}' as a service of its own");
                return CheckFormula(target, limits, Reject);
            default:
                return null;
        }
    }

    private static CommandRejected? CheckDeploy(ServiceState state, int units, string repository, RequestLimits limits, Func<RejectionKind, string, CommandRejected> reject)
    {
        if (state.Deployed)
            return reject(RejectionKind.Conflict, $"service '{state.Name}' is already deployed; pick another service name or destroy it first");
        return CheckUnitCount(units, 0, limits, reject) ?? CheckRepository(repository, limits, reject);
    }

    /// <summary>A formula a request names: a sha256 for a storage key, a revision within the operator's limit.</summary>
    private static CommandRejected? CheckFormula(Formulas.FormulaRef formula, RequestLimits limits, Func<RejectionKind, string, CommandRejected> reject)
    {
        if (!Formulas.BundleFiles.IsSha256(formula.Sha256))
            return reject(RejectionKind.InvalidInput, $"'{Formulas.FormulaLoader.Shown(formula.Sha256 ?? "")}' is not a sha256 (64 hex digits); a request names its formula's bundle by its sha256");
        if (formula.Id.Revision < 0 || formula.Id.Revision > limits.MaxRevision)
            return reject(RejectionKind.InvalidFormula,
                $"metadata.yaml: revision: revision {formula.Id.Revision} of {formula.Id.Name} is over the limit of {limits.MaxRevision}; use a smaller revision");
        return null;
    }

    private static CommandRejected? CheckUnitCount(int count, int existing, RequestLimits limits, Func<RejectionKind, string, CommandRejected> reject)
    {
        if (count < 1) return reject(RejectionKind.InvalidInput, $"cannot add {count} units; ask for at least 1");
        if (count > limits.UnitsPerRequest)
            return reject(RejectionKind.InvalidInput,
                $"{count} units is over the limit of {limits.UnitsPerRequest} units per request; ask for fewer and add more with 'ensemble add-unit'");
        if (existing + count > limits.UnitsPerService)
            return reject(RejectionKind.InvalidInput,
                $"{existing + count} units would be over the limit of {limits.UnitsPerService} units per service ({existing} exist); ask for at most {Math.Max(0, limits.UnitsPerService - existing)}");
        return null;
    }

    private static CommandRejected? CheckRepository(string? repository, RequestLimits limits, Func<RejectionKind, string, CommandRejected> reject) =>
        repository is { Length: var length } && length > limits.RepositoryPathLength
            ? reject(RejectionKind.InvalidInput, $"the repository path is {length} characters long, over the limit of {limits.RepositoryPathLength}; use a shorter path")
            : null;

    private static CommandRejected? CheckUpgrade(ServiceState state, string? repository, int? revision, IReadOnlyList<string>? units,
        int? maxParallel, RequestLimits limits, Func<RejectionKind, string, CommandRejected> reject)
    {
        if (state.Upgrade is { } running)
            return reject(RejectionKind.Conflict,
                $"an upgrade of '{state.Name}' to {running.To.Id} is already running ({running.Succeeded.Count + running.Failed.Count} of {running.Succeeded.Count + running.Failed.Count + running.InFlight.Count + running.Queued.Count} units done); wait for it to finish");
        if (maxParallel is { } parallel && (parallel < 1 || parallel > limits.UnitsPerService))
            return reject(RejectionKind.InvalidInput,
                $"--max-parallel must be between 1 and {limits.UnitsPerService} (the units-per-service limit), not {parallel}; leave it out to upgrade every unit at once");
        if (revision is { } wanted && (wanted < 0 || wanted > limits.MaxRevision))
            return reject(RejectionKind.InvalidInput, $"--revision must be between 0 and {limits.MaxRevision}, not {wanted}");
        if (CheckRepository(repository, limits, reject) is { } badRepository) return badRepository;
        if (units is null) return null;
        if (units.Count == 0) return reject(RejectionKind.InvalidInput, "--units names no unit; name at least one, or leave it out to upgrade every unit");
        if (units.Count > limits.UnitsPerService)
            return reject(RejectionKind.InvalidInput, $"--units names {units.Count} units, over the limit of {limits.UnitsPerService} units per service");
        var twice = units.GroupBy(u => u, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (twice.Count > 0)
            return reject(RejectionKind.InvalidInput, $"--units names {string.Join(", ", twice)} more than once; name each unit once");
        var unknown = units.Where(u => !state.Units.ContainsKey(u)).ToList();
        return unknown.Count == 0 ? null
            : reject(RejectionKind.NotFound,
                $"unit {string.Join(", ", unknown.Take(10))}{(unknown.Count > 10 ? $" and {unknown.Count - 10} more" : "")} is not a unit of '{state.Name}'; see 'ensemble status {state.Name}' for its units");
    }

    public static ServiceState Apply(ServiceState state, IServiceEvent e) => e switch
    {
        ServiceCreated d => state with { Formula = d.Formula, Repository = d.Repository },
        UnitPlaced p => state with
        {
            Units = state.Units.SetItem(p.Unit, p.Machine),
            NextUnitNumber = Math.Max(state.NextUnitNumber, UnitNames.NumberOf(p.Unit) + 1),
        },
        UnitDeleted d => state with
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

    /// <summary>
    /// The events that make a recovered journal agree with the coordination store. The coordinator writes the store
    /// first and journals after, so a crash in between leaves the store ahead: a service deployed (or units added)
    /// that the journal never recorded, a unit or a service removed (or marked dying) that it still holds. The store
    /// is what agents act on, so the journal adopts what it says: a service whose record exists (not dying) is
    /// deployed with the units recorded for it; a unit not in the store, or dying there, is deleted; a service gone
    /// from the store, or dying there, is removed. Empty when both agree (the usual case). <paramref name="units"/>
    /// are the store's unit records of this service.
    /// </summary>
    public static IReadOnlyList<IServiceEvent> Reconcile(ServiceState state, ServiceRecord? service, IReadOnlyList<UnitRecord> units)
    {
        var events = new List<IServiceEvent>();
        if (service is null or { Dying: true })
        {
            if (state.Deployed) events.Add(new ServiceRemoved());
            return events;
        }
        if (!state.Deployed)
            events.Add(new ServiceCreated(new Formulas.FormulaRef(Formulas.FormulaId.Parse(service.Formula), service.Sha256), service.Repository));
        var live = units.Where(u => !u.Dying).ToDictionary(u => u.Name, u => u.Machine);
        events.AddRange(live.Where(u => !state.Units.ContainsKey(u.Key)).OrderBy(u => UnitNames.NumberOf(u.Key)).Select(u => new UnitPlaced(u.Key, u.Value)));
        events.AddRange(state.Units.Keys.Where(u => !live.ContainsKey(u)).Select(u => new UnitDeleted(u)));
        return events;
    }

    /// <summary>
    /// The service record to write back when it names another formula or repository than the journal while no upgrade
    /// runs, else null. An upgrade writes the record's new formula before journaling <see cref="UpgradeBegan"/>; a crash
    /// in between leaves the record naming a revision no unit was flagged for. Here the journal is right (agents do not
    /// act on the service record; each unit's own record says what it runs), so the record is restored.
    /// </summary>
    public static ServiceRecord? RecordToRestore(ServiceState state, ServiceRecord? service) =>
        state is { Formula: { } formula, Upgrade: null } && service is { Dying: false }
        && (service.Formula != formula.Id.ToString() || service.Sha256 != formula.Sha256 || service.Repository != state.Repository)
            ? service with { Formula = formula.Id.ToString(), Sha256 = formula.Sha256, Repository = state.Repository! }
            : null;

    /// <summary>The units to launch now so that at most MaxParallel upgrade at once.</summary>
    public static IReadOnlyList<string> NextLaunches(UpgradeRun run) =>
        run.Halted ? [] : run.Queued.Take(Math.Max(0, run.MaxParallel - run.InFlight.Count)).ToList();

    /// <summary>
    /// The machines new units of <paramref name="service"/> may go on: the one <paramref name="to"/> names if its agent
    /// is started, else every started machine; null when they can be placed, else why not (nothing is changed).
    /// </summary>
    public static CommandRejected? CheckPlacement(string service, string? to, IReadOnlyList<Machines.MachineView> machines, out IReadOnlyList<string> candidates)
    {
        candidates = [];
        if (to is not null)
        {
            if (!Machines.MachineNames.IsValid(to))
                return new(service, RejectionKind.InvalidInput, $"'{to}' is not a machine name; machines are named with {Machines.MachineNames.Rule}");
            if (machines.FirstOrDefault(m => m.Name == to) is not { } machine)
                return new(service, RejectionKind.NotFound, $"machine '{to}' does not exist; see 'ensemble status' for the machines, or add it with 'ensemble add-machine {to}'");
            if (machine.State != Machines.AgentState.Started)
                return new(service, RejectionKind.Unavailable,
                    $"machine '{to}' is {Machines.AgentStates.Name(machine.State)}{(machine.Since is { } since ? $" since {since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z" : "")}; " +
                    "start its node (or wait until it is back), or place the units elsewhere");
            candidates = [to];
            return null;
        }
        candidates = machines.Where(m => m.State == Machines.AgentState.Started).Select(m => m.Name).ToList();
        if (candidates.Count > 0) return null;
        return new(service, RejectionKind.Unavailable, machines.Count == 0
            ? "no machine agent is running to place units on; start an agent and deploy again"
            : $"no machine is started to place units on ({string.Join(", ", machines.Take(10).Select(m => $"{m.Name} is {Machines.AgentStates.Name(m.State)}"))}); start one and try again");
    }

    /// <summary>Names and places <paramref name="count"/> new units, each on the machine <see cref="PlaceUnit"/> picks.</summary>
    public static IReadOnlyList<UnitPlaced> PlanPlacement(ServiceState state, int count, IReadOnlyCollection<string> machines)
    {
        if (machines.Count == 0) return [];
        var placements = new Dictionary<string, string>(state.Units);
        var placed = new List<UnitPlaced>(count);
        for (var i = 0; i < count; i++)
        {
            var unit = UnitNames.Of(state.Name, state.NextUnitNumber + i);
            var machine = PlaceUnit(machines, placements)!;
            placements[unit] = machine;
            placed.Add(new UnitPlaced(unit, machine));
        }
        return placed;
    }

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
