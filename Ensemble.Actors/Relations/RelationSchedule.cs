namespace Ensemble.Relations;

/// <summary>The relations a machine's agent sees in the store: each with its members, by unit name.</summary>
public sealed record RelationsSnapshot(IReadOnlyDictionary<int, RelationView> Relations)
{
    public static readonly RelationsSnapshot Empty = new(new Dictionary<int, RelationView>());

    /// <summary>Asks the machine agent for the latest snapshot (a unit agent that has just started).</summary>
    public sealed record Request
    {
        public static readonly Request Instance = new();
    }
}

/// <summary>One relation and the units in it (their committed settings and what each was told).</summary>
public sealed record RelationView(RelationRecord Record, IReadOnlyDictionary<string, RelationMember> Members)
{
    /// <summary>
    /// The units a unit of <paramref name="service"/> relates to here: the other service's units, or in a peer
    /// relation the service's other units.
    /// </summary>
    public IEnumerable<RelationMember> RemotesOf(string unit)
    {
        var service = Topology.UnitNames.ServiceOf(unit);
        var peer = Record.Endpoints.Count == 1;
        return Members.Values.Where(m => m.Unit != unit && (peer || Topology.UnitNames.ServiceOf(m.Unit) != service))
            .OrderBy(m => m.Unit, UnitOrder.Instance);
    }
}

public enum RelationHookKind { Joined, Changed, Departed, Broken }

/// <summary>What a unit's agent does next about its relations.</summary>
public abstract record RelationAction(int RelationId)
{
    /// <summary>The unit enters a relation it belongs in (no hook: the remote units' -joined follow from it).</summary>
    public sealed record Enter(int RelationId) : RelationAction(RelationId);

    /// <summary>
    /// Runs <c>&lt;name&gt;-relation-&lt;kind&gt;</c> for <paramref name="Remote"/> (null for broken);
    /// RemoteVersion is the remote settings version a -changed hook delivers.
    /// </summary>
    public sealed record Hook(int RelationId, string Name, RelationHookKind Kind, string? Remote, long RemoteVersion) : RelationAction(RelationId)
    {
        public string HookName => $"{Name}-relation-{Kind.ToString().ToLowerInvariant()}";
    }
}

/// <summary>
/// What a unit still has to be told about its relations, as a pure difference between the relations in the store and
/// what the unit has been told (its own member's Seen). Nothing is queued: a change that arrives while the unit's
/// relations are stopped (an upgrade, a hook running, an error) is simply still a difference when they run again — so
/// it is never lost, a unit that joined and departed meanwhile leaves no difference at all, and many changes of one
/// unit are one difference, one -changed.
/// </summary>
public static class RelationSchedule
{
    /// <summary>
    /// The next action for <paramref name="unit"/>, or null when it is up to date. <paramref name="own"/> gives the
    /// unit's own member per relation as the unit itself last wrote it (null: not in it); the snapshot's copy may lag.
    /// Order: a -changed right after each -joined; then departures; then joins; then changes; relations by id.
    /// </summary>
    public static RelationAction? Next(string unit, RelationsSnapshot snapshot, Func<int, RelationMember?> own)
    {
        var service = Topology.UnitNames.ServiceOf(unit);
        foreach (var view in snapshot.Relations.Values.Where(v => v.Record.Involves(service)).OrderBy(v => v.Record.Id))
        {
            var id = view.Record.Id;
            var name = view.Record.EndpointOf(service)!.Name;
            var me = own(id);
            if (view.Record.Dying)
            {
                if (me is null) continue;
                var leaving = me.Seen.Keys.Order(UnitOrder.Instance).FirstOrDefault();
                return leaving is not null
                    ? new RelationAction.Hook(id, name, RelationHookKind.Departed, leaving, 0)
                    : new RelationAction.Hook(id, name, RelationHookKind.Broken, null, 0);
            }
            if (me is null) return new RelationAction.Enter(id);
            var remotes = view.RemotesOf(unit).ToList();
            var present = remotes.ToDictionary(r => r.Unit, StringComparer.Ordinal);
            if (remotes.FirstOrDefault(r => me.Seen.TryGetValue(r.Unit, out var seen) && seen == 0) is { } justJoined)
                return new RelationAction.Hook(id, name, RelationHookKind.Changed, justJoined.Unit, justJoined.SettingsVersion);
            if (me.Seen.Keys.Where(u => !present.ContainsKey(u)).Order(UnitOrder.Instance).FirstOrDefault() is { } departed)
                return new RelationAction.Hook(id, name, RelationHookKind.Departed, departed, 0);
            if (remotes.FirstOrDefault(r => !me.Seen.ContainsKey(r.Unit)) is { } joined)
                return new RelationAction.Hook(id, name, RelationHookKind.Joined, joined.Unit, 0);
            if (remotes.FirstOrDefault(r => me.Seen[r.Unit] != r.SettingsVersion) is { } changed)
                return new RelationAction.Hook(id, name, RelationHookKind.Changed, changed.Unit, changed.SettingsVersion);
        }
        return null;
    }

    /// <summary>
    /// The unit's member after <paramref name="hook"/> exited 0 with <paramref name="writes"/> (relation-set; a null
    /// value deletes): what it was told moves on, and the settings version moves only when the settings changed.
    /// Null for -broken: the unit has left the relation.
    /// </summary>
    public static RelationMember? AfterHook(RelationMember me, RelationAction.Hook hook, IReadOnlyDictionary<string, string?>? writes)
    {
        if (hook.Kind == RelationHookKind.Broken) return null;
        var seen = new Dictionary<string, long>(me.Seen, StringComparer.Ordinal);
        switch (hook.Kind)
        {
            case RelationHookKind.Joined: seen[hook.Remote!] = 0; break;
            case RelationHookKind.Changed: seen[hook.Remote!] = hook.RemoteVersion; break;
            case RelationHookKind.Departed: seen.Remove(hook.Remote!); break;
        }
        var (settings, version) = Written(me, writes);
        return me with { Seen = seen, Settings = settings, SettingsVersion = version };
    }

    /// <summary>The settings after a hook's writes, and their version (moved only when something changed).</summary>
    public static (IReadOnlyDictionary<string, string> Settings, long Version) Written(RelationMember me, IReadOnlyDictionary<string, string?>? writes)
    {
        if (writes is null || writes.Count == 0) return (me.Settings, me.SettingsVersion);
        var settings = new Dictionary<string, string>(me.Settings, StringComparer.Ordinal);
        foreach (var (key, value) in writes)
            if (string.IsNullOrEmpty(value)) settings.Remove(key);
            else settings[key] = value;
        var same = settings.Count == me.Settings.Count && settings.All(kv => me.Settings.TryGetValue(kv.Key, out var v) && v == kv.Value);
        return same ? (me.Settings, me.SettingsVersion) : (settings, me.SettingsVersion + 1);
    }
}

/// <summary>Units in their natural order: by service, then by number (web/2 before web/10).</summary>
public sealed class UnitOrder : IComparer<string>
{
    public static readonly UnitOrder Instance = new();

    public int Compare(string? x, string? y)
    {
        if (x is null || y is null) return string.CompareOrdinal(x, y);
        var byService = string.CompareOrdinal(Topology.UnitNames.ServiceOf(x), Topology.UnitNames.ServiceOf(y));
        return byService != 0 ? byService : Topology.UnitNames.NumberOf(x).CompareTo(Topology.UnitNames.NumberOf(y));
    }
}
