using Ensemble.Serialization;
using Ensemble.Topology;

namespace Ensemble.Services;

/// <summary>Requests about the environment as a whole, answered by the controller's service manager.</summary>
public static class EnvironmentRequests
{
    /// <summary>Answered with <see cref="Pong"/>: the controller is up and reachable.</summary>
    public sealed record Ping : IWireMessage;

    /// <summary>Answered with <see cref="Status"/>, or <see cref="StatusUnavailable"/>. Only: services (or units' services) to read; null reads all.</summary>
    public sealed record GetStatus(IReadOnlyList<string>? Only = null) : IWireMessage;

    /// <summary>
    /// A piece of a unit's hook log, wherever the unit runs: answered with <see cref="Units.UnitReplies.UnitLog"/>
    /// (fetched from its machine's agent), or <see cref="ServiceReplies.CommandRejected"/> when the unit does not
    /// exist or its machine cannot answer. From and Tail as in <see cref="Units.UnitRequests.ReadUnitLog"/>.
    /// </summary>
    public sealed record ReadLog(string Unit, long? From = null, int? Tail = null) : IWireMessage;
}

/// <summary>What the controller answers about the environment: the status `ensemble status` prints.</summary>
public static class EnvironmentReplies
{
    public sealed record Pong(string Environment) : IWireMessage;

    /// <summary>
    /// The stable shape `ensemble status --format json` prints. Unreadable: records in the store that could
    /// not be read (written by something else, or damaged); the rest is there all the same. Machines: every
    /// machine (only those hosting the units asked for, when only some were), by name.
    /// </summary>
    public sealed record Status(IReadOnlyDictionary<string, ServiceStatus> Services, IReadOnlyList<UnreadableRecord>? Unreadable = null,
        IReadOnlyDictionary<string, MachineStatus>? Machines = null, IReadOnlyList<ControllerStatus>? Controllers = null,
        IReadOnlyList<RelationStatus>? Relations = null) : IWireMessage;

    /// <summary>
    /// A relation: its id, interface, endpoints (<c>service:relation</c>; one for a peers relation), whether it is being
    /// removed, and the units in it.
    /// </summary>
    public sealed record RelationStatus(int Id, string Interface, IReadOnlyList<string> Endpoints, bool Dying, IReadOnlyList<string> Units);

    /// <summary>
    /// A running controller: its advertised HOST:PORT, since when it runs (UTC), whether it is the active one (it
    /// hosts the service coordinators) and since when, and its journal kind (sqlite or postgresql).
    /// </summary>
    public sealed record ControllerStatus(string Address, DateTimeOffset? Since, bool Active, DateTimeOffset? ActiveSince, string? Journal);

    /// <summary>
    /// A machine: its node's advertised HOST:PORT (null until a node joined for it), its agent's state and since
    /// when (UTC; null when unknown), and the units placed on it.
    /// </summary>
    public sealed record MachineStatus(string? Address, Machines.AgentState State, DateTimeOffset? Since, IReadOnlyList<string> Units);

    /// <summary>
    /// UpgradeUnknown is why the coordinator could not say whether an upgrade runs (null when it did);
    /// UpgradeRunning then tells only whether some unit is flagged for an upgrade in the store.
    /// </summary>
    public sealed record ServiceStatus(string Formula, IReadOnlyDictionary<string, UnitStatus> Units, bool UpgradeRunning, string? UpgradeUnknown = null,
        bool Dying = false);

    /// <summary>The controller could not read the environment now (its store is unreachable, say); nothing was changed.</summary>
    public sealed record StatusUnavailable(string Reason) : IWireMessage;

    /// <summary>Dying: removed while its machine was down; its agent removes it when it is back.</summary>
    public sealed record UnitStatus(string Formula, Units.UnitPhase State, bool Upgrading, string Machine, string? Error, string? Progress, bool Dying = false);
}
