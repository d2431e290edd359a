using Ensemble.Hooks.Tools;

namespace Ensemble.Tests.Hooks.Tools;

/// <summary>A unit's view for hook tool tests: relations, committed settings and config, all held in memory.</summary>
internal sealed class InMemoryHookToolData(string unit) : IHookToolData
{
    private readonly Dictionary<(int Relation, string Unit), Dictionary<string, string>> _settings = [];

    public string Unit => unit;
    public string PrivateAddress { get; init; } = "10.0.0.5";
    public string PublicAddress { get; init; } = "203.0.113.5";
    public List<HookRelation> RelationList { get; } = [];
    public IReadOnlyList<HookRelation> Relations => RelationList;
    public Dictionary<string, object?> ConfigValues { get; } = [];
    public IReadOnlyDictionary<string, object?> Config => ConfigValues;

    public InMemoryHookToolData Relation(int id, string name, string @interface, params string[] units)
    {
        RelationList.Add(new HookRelation(id, name, @interface, units));
        return this;
    }

    public InMemoryHookToolData Committed(int relation, string owner, params (string Key, string Value)[] settings)
    {
        _settings[(relation, owner)] = settings.ToDictionary(s => s.Key, s => s.Value);
        return this;
    }

    public IReadOnlyDictionary<string, string>? Settings(int relationId, string unit) =>
        _settings.TryGetValue((relationId, unit), out var settings) ? settings : null;
}
