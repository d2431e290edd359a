using Ensemble.Formulas;
using Ensemble.Serialization;

namespace Ensemble.Services;

/// <summary>What a service's coordinator is asked: commands (verbs) and the queries and subscriptions about its upgrades.</summary>
public static class ServiceRequests
{
    /// <summary>A message routed to the coordinator of one service.</summary>
    public interface IServiceCommand : IWireMessage
    {
        string Service { get; }
    }

    /// <summary>To: the machine every unit goes on (`--to`); null spreads them over the started machines.</summary>
    public sealed record DeployService(string Service, string FormulaName, string Repository, int Units, string? To = null) : IServiceCommand;

    /// <summary>To: the machine every unit goes on (`--to`); null spreads them over the started machines.</summary>
    public sealed record AddUnits(string Service, int Count, string? To = null) : IServiceCommand;

    public sealed record DestroyUnit(string Service, string Unit) : IServiceCommand;

    /// <summary>
    /// Upgrade the service's formula. Repository null means the one the service was deployed from;
    /// Units null means every unit; MaxParallel null means all at once.
    /// </summary>
    public sealed record UpgradeFormula(
        string Service,
        string? Repository = null,
        int? Revision = null,
        IReadOnlyList<string>? Units = null,
        int? MaxParallel = null,
        bool DryRun = false) : IServiceCommand;

    public sealed record ResolveUnit(string Service, string Unit, bool Retry) : IServiceCommand;

    public sealed record GetUpgradeStatus(string Service) : IServiceCommand;

    /// <summary>Stops every unit of the service (stop hook), removes them and the service.</summary>
    public sealed record DestroyService(string Service) : IServiceCommand;


    /// <summary>
    /// Subscribes the sender: it gets an <see cref="UpgradeStatus"/> snapshot at once (the whole per-unit view),
    /// then every <see cref="UnitUpgradeProgressed"/> and the final <see cref="UpgradeFinished"/>. Sending it again
    /// is harmless and brings a fresh snapshot, so a client behind a tunnel that may drop re-subscribes now and then.
    /// </summary>
    public sealed record WatchUpgrade(string Service) : IServiceCommand;
}

/// <summary>What a service's coordinator answers, and what it pushes to those watching an upgrade.</summary>
public static class ServiceReplies
{
    /// <summary>The service is gone; or, when Waiting names units, those wait (dying) for their machines to be back to remove them.</summary>
    public sealed record ServiceDestroyed(string Service, IReadOnlyList<string>? Waiting = null) : IWireMessage;

    public sealed record ServiceDeployed(string Service, FormulaId Formula, IReadOnlyList<string> Units) : IWireMessage;

    public sealed record UnitsAdded(string Service, IReadOnlyList<string> Units) : IWireMessage;

    /// <summary>The unit is gone; or, when WaitingForMachine is set, that machine's agent is down and removes it when back.</summary>
    public sealed record UnitDestroyed(string Service, string Unit, string? WaitingForMachine = null) : IWireMessage;

    public sealed record UpgradeStarted(string Service, FormulaId From, FormulaId To, IReadOnlyList<string> Units, bool RevisionBumped) : IWireMessage;

    public sealed record UpgradePlanned(string Service, FormulaId From, FormulaId To, IReadOnlyList<string> Units, bool RevisionBumped) : IWireMessage;

    public sealed record UpgradeStatus(
        string Service,
        FormulaId? Target,
        IReadOnlyList<string> Queued,
        IReadOnlyList<string> InFlight,
        IReadOnlyList<string> Succeeded,
        IReadOnlyDictionary<string, string> Failed,
        bool Running,
        bool Halted,
        IReadOnlyDictionary<string, string>? Progress = null,
        UpgradeView? View = null) : IWireMessage;

    /// <summary>
    /// Where one unit of an upgrade run stands: <c>queued</c>, the step it reported last (<c>launched</c>
    /// until its first report), <c>upgraded</c>, <c>failed</c> with the cause, or <c>not-started</c> when a
    /// halt kept it on the old revision.
    /// </summary>
    public sealed record UnitUpgradeState(string Unit, string State, string? Cause = null);

    /// <summary>The per-unit view of the running upgrade, or of the last one (Finished) while no other has begun.</summary>
    public sealed record UpgradeView(FormulaId From, FormulaId To, bool Finished, IReadOnlyList<UnitUpgradeState> Units);

    public sealed record UnitUpgradeProgressed(string Service, string Unit, string State) : IWireMessage;

    public sealed record UpgradeFinished(string Service, FormulaId To, IReadOnlyList<string> Succeeded, IReadOnlyDictionary<string, string> Failed, IReadOnlyList<string> NotStarted) : IWireMessage;

    /// <summary>Why a request was refused, so a CLI can map it to an exit code.</summary>
    public enum RejectionKind
    {
        NotFound,
        InvalidInput,
        InvalidFormula,
        NoNewerRevision,
        Conflict,
        Unavailable,
    }

    /// <summary>A request was refused and nothing changed.</summary>
    public sealed record CommandRejected(string Service, RejectionKind Kind, string Reason) : IWireMessage;
}

/// <summary>Events a service coordinator journals.</summary>
public static class ServiceEvents
{
    public interface IServiceEvent : IPersistedEvent;

    public sealed record ServiceCreated(FormulaRef Formula, string Repository) : IServiceEvent;

    public sealed record UnitPlaced(string Unit, string Machine) : IServiceEvent;

    public sealed record UnitDeleted(string Unit) : IServiceEvent;

    public sealed record UpgradeBegan(string RunId, FormulaRef From, FormulaRef To, string Repository, IReadOnlyList<string> Units, int MaxParallel) : IServiceEvent;

    public sealed record UnitUpgradeLaunched(string RunId, string Unit) : IServiceEvent;

    public sealed record UnitUpgradeSucceeded(string RunId, string Unit) : IServiceEvent;

    public sealed record UnitUpgradeFailed(string RunId, string Unit, string Cause) : IServiceEvent;

    public sealed record UpgradeEnded(string RunId) : IServiceEvent;

    public sealed record ServiceRemoved : IServiceEvent;
}
