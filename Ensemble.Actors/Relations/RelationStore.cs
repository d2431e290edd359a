using System.Globalization;
using Ensemble.Coordination;
using Ensemble.Topology;

namespace Ensemble.Relations;

/// <summary>
/// Relations in the coordination store, under the topology root:
/// <code>
///   relations/relation-0000000003             RelationRecord (the id is the sequential node's number)
///   relations/relation-0000000003/web-0       RelationMember of web/0: its settings and what it was told
/// </code>
/// The controller creates a relation and marks it dying; each unit agent writes only its own member node.
/// </summary>
public sealed class RelationStore(TopologyStore topology)
{
    private const string Prefix = "relation-";

    private ICoordinationStore Store => topology.Store;

    public string RelationsPath => topology.RelationsPath;

    public string RelationPath(int id) => $"{RelationsPath}/{Prefix}{id.ToString("D10", CultureInfo.InvariantCulture)}";

    public string MemberPath(int id, string unit) => $"{RelationPath(id)}/{UnitNames.DirectoryName(unit)}";

    /// <summary>The relation's id from its node name, or null for a node that is not a relation.</summary>
    public static int? IdOf(string child) =>
        child.StartsWith(Prefix, StringComparison.Ordinal)
        && int.TryParse(child.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : null;

    /// <summary>Creates the relation; its id is the number ZooKeeper gives the sequential node.</summary>
    public async Task<RelationRecord> CreateAsync(string @interface, IReadOnlyList<RelationEndpoint> endpoints)
    {
        var record = new RelationRecord(0, @interface, endpoints);
        var path = await Store.CreateAsync($"{RelationsPath}/{Prefix}", TopologyStore.Encode(record), CreateMode.PersistentSequential);
        return record with { Id = IdOf(path[(path.LastIndexOf('/') + 1)..]) ?? throw new InvalidOperationException($"the store named a new relation {path}") };
    }

    /// <summary>Every relation's id (node names that are not relations are skipped).</summary>
    public async Task<IReadOnlyList<int>> ListIdsAsync(Action<WatchEvent>? watcher = null) =>
        (await Store.GetChildrenAsync(RelationsPath, watcher)).Children.Select(IdOf).OfType<int>().Order().ToList();

    public async Task<IReadOnlyList<RelationRecord>> ListAsync()
    {
        var relations = new List<RelationRecord>();
        foreach (var id in await ListIdsAsync())
            if (await GetAsync(id) is { } relation) relations.Add(relation);
        return relations;
    }

    /// <summary>The relation, or null when it is gone (or its node holds no record).</summary>
    public async Task<RelationRecord?> GetAsync(int id, Action<WatchEvent>? watcher = null)
    {
        NodeData data;
        try { data = await Store.GetDataAsync(RelationPath(id), watcher); }
        catch (NoNodeException) { return null; }
        return Decode<RelationRecord>(data.Data) is { } record ? record with { Id = id } : null;
    }

    public async Task MarkDyingAsync(RelationRecord relation)
    {
        try { await Store.SetDataAsync(RelationPath(relation.Id), TopologyStore.Encode(relation with { Dying = true })); }
        catch (NoNodeException) { }
        await DeleteIfEmptyAsync(relation.Id);
    }

    /// <summary>The member node names of a relation (null when the relation is gone).</summary>
    public async Task<IReadOnlyList<string>?> ListMemberNodesAsync(int id, Action<WatchEvent>? watcher = null)
    {
        try { return (await Store.GetChildrenAsync(RelationPath(id), watcher)).Children; }
        catch (NoNodeException) { return null; }
    }

    public async Task<RelationMember?> GetMemberNodeAsync(int id, string node, Action<WatchEvent>? watcher = null)
    {
        try { return Decode<RelationMember>((await Store.GetDataAsync($"{RelationPath(id)}/{node}", watcher)).Data); }
        catch (NoNodeException) { return null; }
    }

    public Task<RelationMember?> GetMemberAsync(int id, string unit) => GetMemberNodeAsync(id, UnitNames.DirectoryName(unit));

    public async Task<IReadOnlyList<RelationMember>> ListMembersAsync(int id)
    {
        var members = new List<RelationMember>();
        foreach (var node in await ListMemberNodesAsync(id) ?? [])
            if (await GetMemberNodeAsync(id, node) is { } member) members.Add(member);
        return members;
    }

    /// <summary>The unit enters the relation (no settings yet); entering twice changes nothing.</summary>
    public async Task EnterAsync(int id, string unit)
    {
        try { await Store.CreateAsync(MemberPath(id, unit), TopologyStore.Encode(RelationMember.Entering(unit))); }
        catch (NodeExistsException) { }
    }

    /// <summary>Writes what a hook that exited 0 leaves behind: the unit's settings and what it has been told.</summary>
    public Task CommitAsync(int id, RelationMember member) => Store.SetDataAsync(MemberPath(id, member.Unit), TopologyStore.Encode(member));

    /// <summary>The unit leaves the relation; the last one out of a dying relation removes it.</summary>
    public async Task LeaveAsync(int id, string unit)
    {
        try { await Store.DeleteAsync(MemberPath(id, unit)); }
        catch (NoNodeException) { }
        await DeleteIfEmptyAsync(id);
    }

    /// <summary>Removes a dying relation no unit is in any more.</summary>
    public async Task DeleteIfEmptyAsync(int id)
    {
        var relation = await GetAsync(id);
        if (relation is not { Dying: true }) return;
        try { await Store.DeleteAsync(RelationPath(id)); }
        catch (StoreException e) when (e is NoNodeException or NotEmptyException) { }
    }

    private static T? Decode<T>(byte[] data) where T : class
    {
        if (data.Length == 0) return null;
        try { return System.Text.Json.JsonSerializer.Deserialize<T>(data, Json); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    private static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web);
}
