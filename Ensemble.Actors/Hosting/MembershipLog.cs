using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Ensemble.Hosting;

/// <summary>
/// Logs the cluster's members as this node sees them whenever they change, one line: an operator (and a test)
/// can tell from any node's own log whether every node is in one cluster.
/// </summary>
public sealed class MembershipLog : ReceiveActor
{
    public const string Heading = "cluster members as this node sees them:";

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SortedDictionary<string, (Member Member, bool Reachable)> _members = new(StringComparer.Ordinal);
    private string _last = "";

    public MembershipLog()
    {
        Receive<ClusterEvent.MemberRemoved>(e =>
        {
            _members.Remove(e.Member.Address.ToString());
            Print();
        });
        Receive<ClusterEvent.IMemberEvent>(e =>
        {
            var key = e.Member.Address.ToString();
            _members[key] = (e.Member, !_members.TryGetValue(key, out var known) || known.Reachable);
            Print();
        });
        Receive<ClusterEvent.UnreachableMember>(e => Reach(e.Member, false));
        Receive<ClusterEvent.ReachableMember>(e => Reach(e.Member, true));
    }

    public static Props Props() => Akka.Actor.Props.Create<MembershipLog>();

    protected override void PreStart() => _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
        typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Reach(Member member, bool reachable)
    {
        _members[member.Address.ToString()] = (member, reachable);
        Print();
    }

    private void Print()
    {
        var line = string.Join(", ", _members.Select(m =>
            $"{m.Key} ({string.Join("+", m.Value.Member.Roles.Order(StringComparer.Ordinal))}, {m.Value.Member.Status.ToString().ToLowerInvariant()}{(m.Value.Reachable ? "" : ", unreachable")})"));
        if (line == _last) return;
        _last = line;
        _log.Info("{0} {1}", Heading, line);
    }
}
