namespace Ensemble.Relations;

/// <summary>Commits what a hook wrote with relation-set to the unit's member nodes.</summary>
public static class RelationSettings
{
    /// <summary>
    /// Writes each relation's settings changes to the unit's own member node (read from the store: only this unit
    /// writes it), skipping <paramref name="except"/> (the relation a relation hook commits with what it was told).
    /// Returns the members written. A relation the unit is not in (any more) is skipped.
    /// </summary>
    public static async Task<IReadOnlyDictionary<int, RelationMember>> CommitWritesAsync(RelationStore store, string unit,
        IReadOnlyDictionary<int, IReadOnlyDictionary<string, string?>> writes, int? except)
    {
        var written = new Dictionary<int, RelationMember>();
        foreach (var (relation, changes) in writes)
        {
            if (relation == except || changes.Count == 0) continue;
            if (await store.GetMemberAsync(relation, unit) is not { } me) continue;
            var (settings, version) = RelationSchedule.Written(me, changes);
            if (version == me.SettingsVersion) continue;
            var after = me with { Settings = settings, SettingsVersion = version };
            await store.CommitAsync(relation, after);
            written[relation] = after;
        }
        return written;
    }
}
