namespace Ensemble.Relations;

/// <summary>A service's relation endpoints as its current formula declares them (name → interface).</summary>
public sealed record ServiceEndpoints(
    string Service,
    IReadOnlyDictionary<string, string> Provides,
    IReadOnlyDictionary<string, string> Requires,
    IReadOnlyDictionary<string, string> Peers)
{
    public string Describe()
    {
        var parts = Provides.Select(p => $"provides {p.Key} ({p.Value})")
            .Concat(Requires.Select(r => $"requires {r.Key} ({r.Value})"))
            .Concat(Peers.Select(p => $"peers {p.Key} ({p.Value})"))
            .ToList();
        return parts.Count == 0 ? $"{Service} declares no relations" : $"{Service} {string.Join(", ", parts)}";
    }
}

/// <summary>An endpoint as an operator writes it: <c>service</c> or <c>service:relation</c>.</summary>
public sealed record EndpointSpec(string Service, string? Name)
{
    public override string ToString() => Name is null ? Service : $"{Service}:{Name}";

    /// <summary>The spec, or null when the text is not <c>service[:name]</c>.</summary>
    public static EndpointSpec? Parse(string text)
    {
        var colon = text.IndexOf(':');
        var service = colon < 0 ? text : text[..colon];
        var name = colon < 0 ? null : text[(colon + 1)..];
        if (!Topology.UnitNames.IsValidServiceName(service)) return null;
        if (name is not null && !IsValidName(name)) return null;
        return new EndpointSpec(service, name);
    }

    /// <summary>Relation names become hook names (<c>&lt;name&gt;-relation-joined</c>): letters, digits, '-' and '_'.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetter(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}

/// <summary>
/// How two services' endpoints are paired into a relation, pure: a provides endpoint of one and a requires endpoint of
/// the other with the same interface, narrowed by the names the operator gave. One candidate is the answer; none or
/// several are refused with a sentence naming what there is.
/// </summary>
public static class RelationMatching
{
    public abstract record Outcome
    {
        public sealed record Matched(string Interface, RelationEndpoint Provider, RelationEndpoint Requirer) : Outcome;
        public sealed record Refused(string Reason) : Outcome;
    }

    public static Outcome Match(ServiceEndpoints a, EndpointSpec aSpec, ServiceEndpoints b, EndpointSpec bSpec, IEnumerable<RelationRecord> existing)
    {
        if (a.Service == b.Service)
            return new Outcome.Refused($"'{a.Service}' cannot be related to itself; its peers relations are made automatically");
        var candidates = Pairs(a, aSpec, b, bSpec).Concat(Pairs(b, bSpec, a, aSpec)).ToList();
        if (candidates.Count == 0)
            return new Outcome.Refused(
                $"no endpoint of {aSpec} fits one of {bSpec}: a relation needs a 'provides' on one side and a 'requires' on the other with the same interface ({a.Describe()}; {b.Describe()})");
        if (candidates.Count > 1)
            return new Outcome.Refused(
                $"{aSpec} and {bSpec} can be related in {candidates.Count} ways: {string.Join(", ", candidates.Select(c => $"{c.Provider} {c.Requirer} ({c.Interface})"))}; name the endpoints, e.g. 'ensemble add-relation {candidates[0].Provider} {candidates[0].Requirer}'");
        var match = candidates[0];
        if (existing.FirstOrDefault(r => !r.Dying && r.Endpoints.Contains(match.Provider) && r.Endpoints.Contains(match.Requirer)) is { } already)
            return new Outcome.Refused($"{match.Provider} and {match.Requirer} are already related (relation {already.Id}); nothing to do");
        return match;
    }

    private static IEnumerable<Outcome.Matched> Pairs(ServiceEndpoints provider, EndpointSpec providerSpec, ServiceEndpoints requirer, EndpointSpec requirerSpec) =>
        from p in provider.Provides
        where providerSpec.Name is null || providerSpec.Name == p.Key
        from r in requirer.Requires
        where requirerSpec.Name is null || requirerSpec.Name == r.Key
        where p.Value == r.Value
        select new Outcome.Matched(p.Value, new RelationEndpoint(provider.Service, p.Key, RelationRole.Provider), new RelationEndpoint(requirer.Service, r.Key, RelationRole.Requirer));

    /// <summary>The relation remove-relation names: one live relation between the two endpoints, or why not.</summary>
    public static (RelationRecord? Relation, string? Refusal) Find(EndpointSpec aSpec, EndpointSpec bSpec, IEnumerable<RelationRecord> existing)
    {
        bool Fits(RelationEndpoint e, EndpointSpec spec) => e.Service == spec.Service && (spec.Name is null || spec.Name == e.Name);
        var found = existing.Where(r => !r.Dying && r.Endpoints.Count == 2
            && ((Fits(r.Endpoints[0], aSpec) && Fits(r.Endpoints[1], bSpec)) || (Fits(r.Endpoints[0], bSpec) && Fits(r.Endpoints[1], aSpec)))).ToList();
        return found.Count switch
        {
            0 => (null, $"there is no relation between {aSpec} and {bSpec}; 'ensemble status' lists the relations"),
            1 => (found[0], null),
            _ => (null, $"{aSpec} and {bSpec} are related {found.Count} times ({string.Join(", ", found)}); name the endpoints, e.g. 'ensemble remove-relation {found[0].Endpoints[0]} {found[0].Endpoints[1]}'"),
        };
    }

    /// <summary>The peer relations a service gets on deploy, one per peers endpoint.</summary>
    public static IReadOnlyList<(string Interface, RelationEndpoint Endpoint)> Peers(ServiceEndpoints service) =>
        service.Peers.Select(p => (p.Value, new RelationEndpoint(service.Service, p.Key, RelationRole.Peer))).ToList();
}
