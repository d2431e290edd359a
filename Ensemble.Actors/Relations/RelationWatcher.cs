using Akka.Actor;
using Akka.Event;
using Ensemble.Coordination;

namespace Ensemble.Relations;

/// <summary>
/// Keeps a machine's view of the relations in the store current by ZooKeeper watches — no polling — and sends its
/// parent (the machine agent) a <see cref="RelationsSnapshot"/> after every change. Each node is watched once at a
/// time (a one-shot watch is re-armed when it has fired and the node was read again), and only the node that changed
/// is read again. Store trouble is waited out with backoff and the whole view read again.
/// </summary>
public sealed class RelationWatcher : ReceiveActor, IWithTimers
{
    public ITimerScheduler Timers { get; set; } = null!;

    private readonly RelationStore _store;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<int, RelationRecord> _records = new();
    private readonly Dictionary<int, Dictionary<string, RelationMember>> _members = new();
    private readonly HashSet<string> _armed = [];
    private TimeSpan _backoff = TimeSpan.Zero;

    public RelationWatcher(RelationStore store)
    {
        _store = store;
        ReceiveAsync<Fired>(async m =>
        {
            try
            {
                await OnFiredAsync(m.Event);
                _backoff = TimeSpan.Zero;
                Publish();
            }
            catch (Exception ex) when (ex is StoreException || StoreTrouble.IsTransient(ex))
            {
                // Watches may be lost with the session: forget them all and read everything again.
                _armed.Clear();
                _backoff = StoreTrouble.NextWait(_backoff);
                _log.Warning("relations: cannot read the store ({0}); reading again in {1:0.##} s", ex.GetBaseException().Message, _backoff.TotalSeconds);
                Timers.StartSingleTimer("reread", new Fired(new WatchEvent(WatchEventType.NodeChildrenChanged, _store.RelationsPath)), _backoff);
            }
        });
        Receive<ReadAgain>(_ =>
        {
            _armed.Clear();
            Self.Tell(new Fired(new WatchEvent(WatchEventType.NodeChildrenChanged, _store.RelationsPath)));
        });
    }

    public static Props Props(RelationStore store) => Akka.Actor.Props.Create(typeof(RelationWatcher), store);

    /// <summary>Read everything again (a new store session loses the old one's watches).</summary>
    public sealed record ReadAgain
    {
        public static readonly ReadAgain Instance = new();
    }

    private sealed record Fired(WatchEvent Event);

    protected override void PreStart() => Self.Tell(new Fired(new WatchEvent(WatchEventType.NodeChildrenChanged, _store.RelationsPath)));

    /// <summary>A watcher for <paramref name="path"/> unless one is armed already; it tells this actor when it fires.</summary>
    private Action<WatchEvent>? WatchOnce(string path)
    {
        if (!_armed.Add(path)) return null;
        var self = Self;
        return e =>
        {
            self.Tell(new Fired(e with { Path = path }));
        };
    }

    private async Task OnFiredAsync(WatchEvent e)
    {
        _armed.Remove(e.Path);
        if (e.Path == _store.RelationsPath)
        {
            var ids = await _store.ListIdsAsync(WatchOnce(_store.RelationsPath));
            foreach (var gone in _records.Keys.Except(ids).ToList()) Forget(gone);
            foreach (var id in ids.Where(id => !_records.ContainsKey(id)))
                await ReadRelationAsync(id);
            return;
        }
        foreach (var id in _records.Keys.ToList())
        {
            var relationPath = _store.RelationPath(id);
            if (e.Path == relationPath)
            {
                await ReadRelationAsync(id);
                return;
            }
            if (e.Path.StartsWith(relationPath + "/", StringComparison.Ordinal))
            {
                await ReadMemberAsync(id, e.Path[(relationPath.Length + 1)..]);
                return;
            }
        }
    }

    /// <summary>Reads a relation's record and its members, arming a watch on each.</summary>
    private async Task ReadRelationAsync(int id)
    {
        var record = await _store.GetAsync(id, WatchOnce(_store.RelationPath(id)));
        if (record is null)
        {
            Forget(id);
            return;
        }
        _records[id] = record;
        var members = _members.TryGetValue(id, out var known) ? known : _members[id] = new Dictionary<string, RelationMember>(StringComparer.Ordinal);
        // The relation node's watch covers its children as well as its data: a data read alone does not arm a child
        // watch in ZooKeeper, so the children are listed with the same (already armed) path's watcher key.
        var nodes = await _store.ListMemberNodesAsync(id, WatchOnce(_store.RelationPath(id) + "/"));
        if (nodes is null)
        {
            Forget(id);
            return;
        }
        foreach (var gone in members.Keys.Where(unit => !nodes.Contains(Topology.UnitNames.DirectoryName(unit))).ToList()) members.Remove(gone);
        // A member whose watch is armed is known and current (its watch says when it is not).
        foreach (var node in nodes)
            if (!_armed.Contains(_store.RelationPath(id) + "/" + node))
                await ReadMemberAsync(id, node);
    }

    private async Task ReadMemberAsync(int id, string node)
    {
        if (node.Length == 0)
        {
            // The children of the relation changed: a unit entered or left.
            await ReadRelationAsync(id);
            return;
        }
        var path = _store.RelationPath(id) + "/" + node;
        var member = await _store.GetMemberNodeAsync(id, node, WatchOnce(path));
        if (member is null) _armed.Remove(path); // gone: no watch was set on it
        if (!_members.TryGetValue(id, out var members)) return;
        foreach (var stale in members.Where(kv => Topology.UnitNames.DirectoryName(kv.Key) == node).Select(kv => kv.Key).ToList()) members.Remove(stale);
        if (member is not null && Topology.UnitNames.IsValid(member.Unit) && Topology.UnitNames.DirectoryName(member.Unit) == node)
            members[member.Unit] = member;
    }

    private void Forget(int id)
    {
        var path = _store.RelationPath(id);
        _armed.RemoveWhere(p => p == path || p.StartsWith(path + "/", StringComparison.Ordinal));
        _records.Remove(id);
        _members.Remove(id);
    }

    private void Publish() => Context.Parent.Tell(new RelationsSnapshot(_records.ToDictionary(
        kv => kv.Key,
        kv => new RelationView(kv.Value, _members.TryGetValue(kv.Key, out var m)
            ? new Dictionary<string, RelationMember>(m, StringComparer.Ordinal)
            : new Dictionary<string, RelationMember>()))));
}
