namespace Ensemble.Relations;

/// <summary>Which side of a relation an endpoint is on: a formula's provides, requires or peers.</summary>
public enum RelationRole { Provider, Requirer, Peer }

/// <summary>One side of a relation: a service's endpoint (its relation name in metadata.yaml) and its role.</summary>
public sealed record RelationEndpoint(string Service, string Name, RelationRole Role)
{
    public override string ToString() => $"{Service}:{Name}";
}

/// <summary>
/// A relation as the store holds it, at <c>&lt;root&gt;/relations/relation-&lt;id&gt;</c>: its number (unique in the
/// environment, from the sequential node), the interface both endpoints share, and the endpoints (two, or one for a
/// peer relation). Dying: remove-relation was asked; each unit leaves (departed, broken) and the last one out removes it.
/// </summary>
public sealed record RelationRecord(int Id, string Interface, IReadOnlyList<RelationEndpoint> Endpoints, bool Dying = false)
{
    /// <summary>The endpoint of <paramref name="service"/>, or null when the service is not in this relation.</summary>
    public RelationEndpoint? EndpointOf(string service) => Endpoints.FirstOrDefault(e => e.Service == service);

    /// <summary>The relation as a unit of <paramref name="service"/> names it: <c>db:3</c>.</summary>
    public string IdFor(string service) => $"{EndpointOf(service)?.Name ?? Endpoints[0].Name}:{Id}";

    /// <summary>True when a unit of <paramref name="service"/> takes part (both sides of a peer relation are its own).</summary>
    public bool Involves(string service) => EndpointOf(service) is not null;

    public override string ToString() => Endpoints.Count == 1
        ? $"{Endpoints[0]} (peer, {Interface})"
        : $"{Endpoints[0]} {Endpoints[1]} ({Interface})";
}

/// <summary>
/// A unit's place in a relation, at <c>relations/relation-&lt;id&gt;/units/&lt;service&gt;-&lt;n&gt;</c>, written only by
/// that unit's agent: its settings (what remote units read with relation-get), a version that moves only when the
/// settings change, and what the unit has been told of each remote unit — 0: joined delivered, changed not yet;
/// otherwise the remote settings version its last -changed hook saw. Settings and what was delivered are written in
/// one store write after a hook exits 0, so a hook is never run twice for one change, nor its writes kept when it failed.
/// </summary>
public sealed record RelationMember(
    string Unit,
    IReadOnlyDictionary<string, string> Settings,
    long SettingsVersion,
    IReadOnlyDictionary<string, long> Seen)
{
    public static RelationMember Entering(string unit) =>
        new(unit, new Dictionary<string, string>(StringComparer.Ordinal), 1, new Dictionary<string, long>(StringComparer.Ordinal));
}
