using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>Everything a node observed about itself in one health check; <see cref="HealthJudge"/> decides from it alone.</summary>
/// <param name="SeenUnreachableBySelf">whether some member (from the gossip this node holds) marked this node unreachable.</param>
/// <param name="Journal">null on a node without the controller role (it has no journal to reach).</param>
public sealed record NodeObservation(
    string Address,
    IReadOnlyList<string> Roles,
    string? Machine,
    string MemberStatus,
    bool SeenUnreachableBySelf,
    IReadOnlyList<string> Unreachable,
    IReadOnlyList<StoreHealth> Stores,
    JournalHealth? Journal,
    bool JournalExpected,
    DateTimeOffset StartedAt,
    DateTimeOffset Now);

/// <summary>Turns observations into healthy or unhealthy with reasons: pure, so every rule is tested without a node.</summary>
public static class HealthJudge
{
    public const string Connected = "connected";

    /// <summary>
    /// Unhealthy when the node is not an Up member, when other members cannot reach it, when a store session is not
    /// connected, or when a controller's journal did not answer. Members this node sees unreachable are reported, not
    /// held against it: each answers for itself, and one that cannot answer is unhealthy in the environment's survey.
    /// </summary>
    public static NodeHealth Judge(NodeObservation o)
    {
        var reasons = new List<string>();
        if (o.MemberStatus != "Up")
            reasons.Add($"cluster member is {o.MemberStatus}, not Up");
        if (o.SeenUnreachableBySelf)
            reasons.Add("other cluster members see this node as unreachable");
        foreach (var store in o.Stores.Where(s => s.State != Connected))
            reasons.Add($"coordination store session ({store.Session}, {store.Backend}) is {store.State}" + (store.Error is { } e ? $": {e}" : ""));
        if (o.JournalExpected && o.Journal is null)
            reasons.Add("journal not checked yet");
        else if (o.Journal is { Reachable: false } journal)
            reasons.Add($"journal is not reachable: {journal.Error}");
        return new NodeHealth(o.Address, o.Roles, o.Machine, reasons.Count == 0, reasons, o.MemberStatus, o.Unreachable,
            o.Stores, o.Journal, o.StartedAt, o.Now);
    }

    /// <summary>What the environment's survey reports for a member that did not answer within the deadline.</summary>
    public static NodeHealth NotAnswering(string address, IReadOnlyList<string> roles, string memberStatus, TimeSpan deadline, DateTimeOffset now) =>
        new(address, roles, null, false, [$"did not answer within {deadline.TotalSeconds:0.#} s (member status {memberStatus})"],
            memberStatus, [], [], null, now, now);

    /// <summary>Whether a health file's check is recent enough to trust: written within <paramref name="maxAge"/> of now.</summary>
    public static bool IsFresh(DateTimeOffset checkedAt, DateTimeOffset now, TimeSpan maxAge) => now - checkedAt <= maxAge;
}
