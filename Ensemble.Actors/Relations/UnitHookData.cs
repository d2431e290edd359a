using Ensemble.Hooks.Tools;

namespace Ensemble.Relations;

/// <summary>
/// What a unit's hook tools see during one hook run, fixed when the hook starts: the relations the unit is in (with the
/// remote units it has been told of, adjusted for the hook's own -joined or -departed), everyone's committed settings,
/// the unit's configuration and its machine's address.
/// </summary>
public sealed class UnitHookData(
    string unit,
    string address,
    RelationsSnapshot snapshot,
    IReadOnlyDictionary<int, RelationMember?> own,
    IReadOnlyDictionary<string, object?> config,
    RelationAction.Hook? hook) : IHookToolData
{
    public string Unit => unit;
    public string PrivateAddress => address;
    public string PublicAddress => address;
    public IReadOnlyDictionary<string, object?> Config => config;

    public IReadOnlyList<HookRelation> Relations { get; } = RelationsOf(unit, snapshot, own, hook);

    private static List<HookRelation> RelationsOf(string unit, RelationsSnapshot snapshot, IReadOnlyDictionary<int, RelationMember?> own, RelationAction.Hook? hook)
    {
        var service = Topology.UnitNames.ServiceOf(unit);
        var relations = new List<HookRelation>();
        foreach (var view in snapshot.Relations.Values.Where(v => v.Record.Involves(service)).OrderBy(v => v.Record.Id))
        {
            if (own.GetValueOrDefault(view.Record.Id) is not { } me) continue;
            var units = me.Seen.Keys.ToHashSet(StringComparer.Ordinal);
            if (hook is { } h && h.RelationId == view.Record.Id && h.Remote is { } remote)
            {
                if (h.Kind is RelationHookKind.Joined or RelationHookKind.Changed) units.Add(remote);
                if (h.Kind == RelationHookKind.Departed) units.Remove(remote);
            }
            relations.Add(new HookRelation(view.Record.Id, view.Record.EndpointOf(service)!.Name, view.Record.Interface,
                units.Order(UnitOrder.Instance).ToList()));
        }
        return relations;
    }

    public IReadOnlyDictionary<string, string>? Settings(int relationId, string of)
    {
        if (of == unit) return own.GetValueOrDefault(relationId)?.Settings;
        return snapshot.Relations.TryGetValue(relationId, out var view) && view.Members.TryGetValue(of, out var member) ? member.Settings : null;
    }
}
