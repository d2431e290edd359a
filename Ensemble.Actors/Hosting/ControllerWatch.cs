using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Ensemble.Hosting;

/// <summary>
/// On a node without the controller role: when the last controller has left the cluster (stopped gracefully,
/// so nobody downs anyone), this node leaves too. Its node loop then starts a fresh incarnation that asks the
/// join gate again and joins the controller's cluster when one is back, instead of staying in a cluster of
/// agents that no controller will ever join. (A controller that crashes or is cut off is handled by the split
/// brain resolver instead: this side, without the oldest controller, downs itself.)
/// </summary>
public sealed class ControllerWatch : ReceiveActor
{
    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<UniqueAddress> _controllers = [];
    private bool _leaving;

    public ControllerWatch()
    {
        Receive<ClusterEvent.MemberRemoved>(e =>
        {
            if (!_controllers.Remove(e.Member.UniqueAddress) || _controllers.Count > 0 || _leaving) return;
            _leaving = true;
            _log.Warning("the last controller ({0}) has left the cluster; leaving it too, to join again when a controller is back", e.Member.Address);
            _cluster.Leave(_cluster.SelfAddress);
        });
        Receive<ClusterEvent.IMemberEvent>(e =>
        {
            if (e.Member.HasRole(NodeOptions.ControllerRole)) _controllers.Add(e.Member.UniqueAddress);
        });
    }

    public static Props Props() => Akka.Actor.Props.Create<ControllerWatch>();

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);
}
