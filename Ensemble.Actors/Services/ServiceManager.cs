using Akka.Actor;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Services;

/// <summary>Routes each service request to that service's coordinator, starting it (and so its recovery) on first use.</summary>
public sealed class ServiceManager : ReceiveActor
{
    public const string ActorName = "services";

    public ServiceManager(ControllerContext context)
    {
        Receive<IServiceCommand>(m =>
        {
            if (!Topology.UnitNames.IsValidServiceName(m.Service))
            {
                Sender.Tell(new CommandRejected(m.Service, RejectionKind.InvalidInput,
                    $"'{m.Service}' is not a valid service name; use lowercase letters, digits and '-', starting with a letter"));
                return;
            }
            var name = "service-" + m.Service;
            var child = Context.Child(name);
            if (child.IsNobody()) child = Context.ActorOf(ServiceActor.Props(m.Service, context), name);
            child.Forward(m);
        });
    }

    public static Props Props(ControllerContext context) => Akka.Actor.Props.Create(() => new ServiceManager(context));

    /// <summary>
    /// A coordinator that fails unexpectedly restarts and recovers from its journal; its sagas are
    /// restarted by it in turn, each recovering its own journal.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(10, TimeSpan.FromMinutes(1), _ => Directive.Restart);
}
