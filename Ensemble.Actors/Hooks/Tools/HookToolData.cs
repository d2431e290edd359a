namespace Ensemble.Hooks.Tools;

/// <summary>
/// What a hook's tools can see of its unit: implemented by the unit agent, read by <see cref="HookSession"/>
/// while the hook runs.
/// </summary>
public interface IHookToolData
{
    /// <summary>The unit's name, e.g. "web/0".</summary>
    string Unit { get; }

    /// <summary>The address of the unit's machine on its private network.</summary>
    string PrivateAddress { get; }

    string PublicAddress { get; }

    /// <summary>Every relation the unit is in.</summary>
    IReadOnlyList<HookRelation> Relations { get; }

    /// <summary>The committed settings of a unit (this one or a remote one) in a relation; null if it has none.</summary>
    IReadOnlyDictionary<string, string>? Settings(int relationId, string unit);

    /// <summary>Option → typed value (string, long, double, bool), or null when unset and without a default.</summary>
    IReadOnlyDictionary<string, object?> Config { get; }
}

/// <summary>One relation of a unit: <paramref name="Name"/> is this unit's endpoint, <paramref name="Units"/> the remote units as this unit knows them.</summary>
public sealed record HookRelation(int Id, string Name, string Interface, IReadOnlyList<string> Units)
{
    /// <summary>How hooks name it: "db:3".</summary>
    public string Key => $"{Name}:{Id}";
}

/// <summary>The default relation of a relation hook, and its remote unit (none in relation-broken).</summary>
public sealed record RelationHookScope(int RelationId, string RelationName, string? RemoteUnit);
