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

    /// <summary>
    /// Would a deploy of <paramref name="Units"/> units as <paramref name="Service"/> be accepted? Asked before the
    /// operator's side reads the repository and uploads, so a request the controller refuses anyway costs nothing.
    /// Answered with <see cref="ServiceReplies.DeployPrepared"/> or <see cref="ServiceReplies.CommandRejected"/>.
    /// </summary>
    public sealed record PrepareDeploy(string Service, string Repository, int Units, string? To = null) : IServiceCommand;

    /// <summary>
    /// Deploy the uploaded bundle <paramref name="Formula"/> (in the controller's formula storage, named by its
    /// sha256) with <paramref name="Units"/> units. <paramref name="Repository"/> is where the operator read it, on
    /// the operator's machine: remembered for later upgrades, never opened by the controller. <paramref name="To"/>: the
    /// machine every unit goes on (`--to`); null spreads them over the started machines.
    /// </summary>
    /// <remarks>Config: option → value as the operator typed it (`deploy --config`), checked against the formula's options before anything is recorded.</remarks>
    public sealed record DeployService(string Service, FormulaRef Formula, string Repository, int Units, string? To = null,
        IReadOnlyDictionary<string, string>? Config = null) : IServiceCommand;

    /// <summary>To: the machine every unit goes on (`--to`); null spreads them over the started machines.</summary>
    public sealed record AddUnits(string Service, int Count, string? To = null) : IServiceCommand;

    public sealed record DestroyUnit(string Service, string Unit) : IServiceCommand;

    /// <summary>
    /// Would this upgrade be accepted, and from what? Answered with <see cref="ServiceReplies.UpgradePrepared"/>: the
    /// deployed formula (id and sha256, which the author's edit loop compares with) and the repository the service
    /// came from; or with <see cref="ServiceReplies.CommandRejected"/>. Repository null: the service's own.
    /// </summary>
    public sealed record PrepareUpgrade(
        string Service,
        string? Repository = null,
        int? Revision = null,
        IReadOnlyList<string>? Units = null,
        int? MaxParallel = null) : IServiceCommand;

    /// <summary>
    /// Upgrade the service from <paramref name="Deployed"/> (as the operator's side saw it when it resolved the
    /// revision) to the uploaded bundle <paramref name="Target"/>; a null Target means the repository holds nothing
    /// newer (its highest revision is <paramref name="LatestRevision"/>), so only units an earlier, halted upgrade left
    /// behind have somewhere to go. Units null means every unit; MaxParallel null means all at once. A dry run needs
    /// no upload: the controller only plans.
    /// </summary>
    public sealed record UpgradeFormula(
        string Service,
        FormulaRef Deployed,
        FormulaRef? Target,
        string Repository,
        int LatestRevision,
        bool RevisionBumped = false,
        IReadOnlyList<string>? Units = null,
        int? MaxParallel = null,
        bool DryRun = false) : IServiceCommand;

    public sealed record ResolveUnit(string Service, string Unit, bool Retry) : IServiceCommand;

    public sealed record GetUpgradeStatus(string Service) : IServiceCommand;

    /// <summary>
    /// Sets options of the service's configuration (`ensemble set`): option → value as typed; an empty value resets
    /// the option to its default. Answered with <see cref="ServiceReplies.ConfigSet"/>, or with
    /// <see cref="ServiceReplies.CommandRejected"/> (InvalidInput) when any pair does not fit, and then nothing changed.
    /// </summary>
    public sealed record SetConfig(string Service, IReadOnlyDictionary<string, string> Pairs) : IServiceCommand;

    /// <summary>Every option of the service's current formula with its value (`ensemble get`): answered with <see cref="ServiceReplies.ConfigView"/>.</summary>
    public sealed record GetConfig(string Service) : IServiceCommand;

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

    /// <summary>The deploy would be accepted: read the repository with revisions up to <paramref name="MaxRevision"/>, upload, then deploy.</summary>
    public sealed record DeployPrepared(string Service, int MaxRevision) : IWireMessage;

    /// <summary>
    /// The upgrade would be accepted: the service runs <paramref name="Deployed"/>, read from <paramref name="Repository"/>
    /// (the one asked for, or the service's own), with revisions up to <paramref name="MaxRevision"/>.
    /// </summary>
    public sealed record UpgradePrepared(string Service, FormulaRef Deployed, string Repository, int MaxRevision) : IWireMessage;

    public sealed record ServiceDeployed(string Service, FormulaId Formula, IReadOnlyList<string> Units) : IWireMessage;

    public sealed record UnitsAdded(string Service, IReadOnlyList<string> Units) : IWireMessage;

    /// <summary>The unit is gone; or, when WaitingForMachine is set, that machine's agent is down and removes it when back.</summary>
    public sealed record UnitDestroyed(string Service, string Unit, string? WaitingForMachine = null) : IWireMessage;

    /// <summary>DroppedOptions: the set options the new revision no longer takes, each as "name (why)"; their values are gone.</summary>
    public sealed record UpgradeStarted(string Service, FormulaId From, FormulaId To, IReadOnlyList<string> Units, bool RevisionBumped,
        IReadOnlyList<string>? DroppedOptions = null) : IWireMessage;

    /// <summary>The configuration changed (Changed: the options whose value moved, none when it was already so); Version is the store's.</summary>
    public sealed record ConfigSet(string Service, IReadOnlyList<string> Changed, int Version) : IWireMessage;

    /// <summary>
    /// One option as `ensemble get` shows it: Value is the value in effect (set, else the default; null when neither),
    /// rendered invariantly; Set says whether the operator set it.
    /// </summary>
    public sealed record ConfigEntry(string Name, string Type, string? Default, string? Description, string? Value, bool Set);

    /// <summary>The service's options under its current formula, by name, and the configuration's version.</summary>
    public sealed record ConfigView(string Service, FormulaId Formula, int Version, IReadOnlyList<ConfigEntry> Options) : IWireMessage;

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
