using Akka.Actor;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Services;

/// <summary>Routes each service request to that service's coordinator, starting it (and so its recovery) on first use.</summary>
public sealed class ServiceManager : ReceiveActor
{
    public const string ActorName = "services";

    private readonly ControllerContext _context;

    private sealed record StartCoordinators(IReadOnlyList<string> Services);

    public ServiceManager(ControllerContext context)
    {
        _context = context;
        // Every deployed service's coordinator starts with the controller, so an upgrade a crash
        // interrupted resumes at once rather than when the service is next asked for something.
        Receive<StartCoordinators>(m =>
        {
            foreach (var service in m.Services.Where(Topology.UnitNames.IsValidServiceName)) CoordinatorFor(service);
        });
        Receive<IServiceCommand>(m =>
        {
            if (!Topology.UnitNames.IsValidServiceName(m.Service))
            {
                Sender.Tell(new CommandRejected(m.Service, RejectionKind.InvalidInput,
                    $"'{m.Service}' is not a valid service name; use lowercase letters, digits and '-', starting with a letter"));
                return;
            }
            CoordinatorFor(m.Service).Forward(m);
        });
    }

    protected override void PreStart() =>
        _context.Topology.ListServicesAsync().PipeTo(Self, success: services => new StartCoordinators(services));

    private IActorRef CoordinatorFor(string service)
    {
        var name = "service-" + service;
        var child = Context.Child(name);
        return child.IsNobody() ? Context.ActorOf(ServiceActor.Props(service, _context), name) : child;
    }

    public static Props Props(ControllerContext context) => Akka.Actor.Props.Create(() => new ServiceManager(context));

    /// <summary>
    /// A coordinator that fails unexpectedly restarts and recovers from its journal; its sagas are
    /// restarted by it in turn, each recovering its own journal.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(10, TimeSpan.FromMinutes(1), _ => Directive.Restart);
}
