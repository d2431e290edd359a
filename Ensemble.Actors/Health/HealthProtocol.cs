using System.Text.Json.Serialization;
using Ensemble.Serialization;

namespace Ensemble.Health;

/// <summary>What is asked about health: one node's (of its /user/health), or the whole environment's (of a controller).</summary>
public static class HealthRequests
{
    /// <summary>Answered by every node's <see cref="HealthActor"/> with <see cref="HealthReplies.NodeHealth"/>: its last check.</summary>
    public sealed record GetNodeHealth : IWireMessage;

    /// <summary>
    /// Answered by a controller's <see cref="EnvironmentHealthActor"/> with <see cref="HealthReplies.EnvironmentHealth"/>:
    /// every cluster member asked with a deadline (seconds; null: the default), one that does not answer reported unhealthy.
    /// </summary>
    public sealed record GetEnvironmentHealth(double? DeadlineSeconds = null) : IWireMessage;
}

/// <summary>What a node and the environment say about their health (`ensemble health`, the health file).</summary>
public static class HealthReplies
{
    /// <summary>
    /// One node's health as of <see cref="CheckedAt"/>: healthy, or the reasons it is not (one sentence each), and what
    /// was observed: its cluster member status as it sees itself, the members it sees unreachable, each coordination
    /// store session, the journal (controllers only; null elsewhere), and when it started.
    /// </summary>
    public sealed record NodeHealth(
        string Address,
        IReadOnlyList<string> Roles,
        string? Machine,
        bool Healthy,
        IReadOnlyList<string> Reasons,
        string MemberStatus,
        IReadOnlyList<string> Unreachable,
        IReadOnlyList<StoreHealth> Stores,
        JournalHealth? Journal,
        DateTimeOffset StartedAt,
        DateTimeOffset CheckedAt) : IWireMessage
    {
        [JsonIgnore]
        public TimeSpan Uptime => CheckedAt - StartedAt;
    }

    /// <summary>
    /// One coordination store session of a node: which (the agent's or the controller's), its backend, and its state —
    /// connected, reconnecting (ZooKeeper lost the connection, the session may still live), expired (a new session is
    /// being opened), closed, or unreachable (the session says nothing cheaper, but a read failed) — with the error.
    /// </summary>
    public sealed record StoreHealth(string Session, string Backend, string State, string? Error);

    /// <summary>Whether a tiny persistent actor recovered from the journal within the deadline, and how long it took.</summary>
    public sealed record JournalHealth(bool Reachable, string? Error, double Milliseconds);

    /// <summary>The environment's nodes (every cluster member the controller knows), by address.</summary>
    public sealed record EnvironmentHealth(string Environment, IReadOnlyList<NodeHealth> Nodes) : IWireMessage
    {
        [JsonIgnore]
        public bool Healthy => Nodes.Count > 0 && Nodes.All(n => n.Healthy);
    }
}
