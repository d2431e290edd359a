using System.Text.Json;
using Ensemble.Coordination;
using Ensemble.Topology;

namespace Ensemble.Formulas.Transfer;

/// <summary>
/// A live controller node as agents and other controllers find it: Node its advertised HOST:PORT, Bundles the actor
/// path of its bundle server, Address its cluster address (the seed another controller joins), Since when it
/// started, Journal the kind of its journal ("sqlite" or "postgresql": only controllers sharing a PostgreSQL
/// journal may run side by side), Id the controller's identity (kept in its data directory, so a controller restarted on
/// another port knows its own record from before). The last four are null in records written before several controllers existed.
/// </summary>
public sealed record ControllerPresence(string Node, string Bundles, string? Address = null, DateTimeOffset? Since = null, string? Journal = null,
    string? Id = null)
{
    public const string SqliteJournal = "sqlite";
    public const string PostgresJournal = "postgresql";

    /// <summary>Whether this controller may share the environment with others: it journals to the shared database.</summary>
    public bool SharesJournal => Journal == PostgresJournal;
}

/// <summary>
/// The ephemeral records <c>&lt;root&gt;/controllers/&lt;host:port&gt;</c> through which agents find a controller's bundle
/// server and a starting controller finds the controllers already running. The controller node writes its own
/// before it joins the cluster, in its store session, so the record vanishes with the node (within the session
/// timeout when the node dies).
/// </summary>
public sealed class ControllerDirectory(TopologyStore topology)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private ICoordinationStore Store => topology.Store;

    public string ControllersPath => $"{topology.Root}/controllers";

    public string PathOf(string node) => $"{ControllersPath}/{node}";

    /// <summary>Announces a controller node; a record left by a previous incarnation under the same name is replaced.</summary>
    public async Task RegisterAsync(ControllerPresence controller)
    {
        try { await Store.CreateAsync(ControllersPath, []); }
        catch (NodeExistsException) { }
        var data = JsonSerializer.SerializeToUtf8Bytes(controller, Json);
        var path = PathOf(controller.Node);
        try
        {
            await Store.CreateAsync(path, data, CreateMode.Ephemeral);
        }
        catch (NodeExistsException)
        {
            try { await Store.DeleteAsync(path); }
            catch (NoNodeException) { }
            await Store.CreateAsync(path, data, CreateMode.Ephemeral);
        }
    }

    public async Task UnregisterAsync(string node)
    {
        try { await Store.DeleteAsync(PathOf(node)); }
        catch (NoNodeException) { }
    }

    /// <summary>The controllers that announced themselves, in name order; records that are not presences are skipped.</summary>
    public async Task<IReadOnlyList<ControllerPresence>> ListAsync()
    {
        IReadOnlyList<string> children;
        try { children = (await Store.GetChildrenAsync(ControllersPath)).Children; }
        catch (NoNodeException) { return []; }
        var found = new List<ControllerPresence>();
        foreach (var child in children.Order(StringComparer.Ordinal))
        {
            try
            {
                var data = (await Store.GetDataAsync(PathOf(child))).Data;
                if (JsonSerializer.Deserialize<ControllerPresence>(data, Json) is { Node: not null, Bundles: not null } presence) found.Add(presence);
            }
            catch (NoNodeException) { }
            catch (JsonException) { }
        }
        return found;
    }
}
