using Akka.Actor;
using Ensemble.Topology;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Services;

/// <summary>
/// Routes each service request to that service's coordinator, starting it (and so its recovery) on first
/// use, and answers questions about the environment as a whole.
/// </summary>
public sealed class ServiceManager : ReceiveActor
{
    public const string ActorName = "services";

    private readonly ControllerContext _context;

    private sealed record StartCoordinators(IReadOnlyList<string> Services);

    public ServiceManager(ControllerContext context, string environment)
    {
        _context = context;
        // Every deployed service's coordinator starts with the controller, so an upgrade a crash
        // interrupted resumes at once rather than when the service is next asked for something.
        Receive<StartCoordinators>(m =>
        {
            foreach (var service in m.Services.Where(UnitNames.IsValidServiceName)) CoordinatorFor(service);
        });
        Receive<EnvironmentProtocol.Ping>(_ => Sender.Tell(new EnvironmentProtocol.Pong(environment)));
        Receive<EnvironmentProtocol.GetStatus>(_ =>
            StatusAsync(Context.GetChildren().ToDictionary(c => c.Path.Name)).PipeTo(Sender));
        Receive<IServiceCommand>(m =>
        {
            if (!UnitNames.IsValidServiceName(m.Service))
            {
                Sender.Tell(new CommandRejected(m.Service, RejectionKind.InvalidInput,
                    $"'{m.Service}' is not a valid service name; use lowercase letters, digits and '-', starting with a letter"));
                return;
            }
            CoordinatorFor(m.Service).Forward(m);
        });
    }

    public static Props Props(ControllerContext context, string environment = "local") =>
        Akka.Actor.Props.Create(typeof(ServiceManager), context, environment);

    protected override void PreStart() =>
        _context.Topology.ListServicesAsync().PipeTo(Self, success: services => new StartCoordinators(services));

    /// <summary>
    /// A coordinator that fails unexpectedly restarts and recovers from its journal; its sagas are
    /// restarted by it in turn, each recovering its own journal.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(10, TimeSpan.FromMinutes(1), _ => Directive.Restart);

    private IActorRef CoordinatorFor(string service)
    {
        var name = "service-" + service;
        var child = Context.Child(name);
        return child.IsNobody() ? Context.ActorOf(ServiceActor.Props(service, _context), name) : child;
    }

    /// <summary>The store's view of every service and unit, with each running upgrade's live progress.</summary>
    private async Task<EnvironmentProtocol.Status> StatusAsync(IReadOnlyDictionary<string, IActorRef> coordinators)
    {
        var topology = _context.Topology;
        var services = new SortedDictionary<string, EnvironmentProtocol.ServiceStatus>(StringComparer.Ordinal);
        foreach (var name in await topology.ListServicesAsync())
        {
            if (await topology.GetServiceAsync(name) is not { } service) continue;
            UpgradeStatus? upgrade = null;
            if (coordinators.TryGetValue("service-" + name, out var coordinator))
            {
                try { upgrade = await coordinator.Ask<UpgradeStatus>(new GetUpgradeStatus(name), TimeSpan.FromSeconds(5)); }
                catch (AskTimeoutException) { }
            }
            var units = new SortedDictionary<string, EnvironmentProtocol.UnitStatus>(Comparer<string>.Create(
                (a, b) => UnitNames.NumberOf(a).CompareTo(UnitNames.NumberOf(b))));
            foreach (var unit in await topology.ListUnitsAsync(name))
            {
                var upgrading = await topology.GetUpgradeFlagAsync(unit.Name) is not null;
                string? progress = null;
                upgrade?.Progress?.TryGetValue(unit.Name, out progress);
                units[unit.Name] = new EnvironmentProtocol.UnitStatus(unit.Formula, unit.State, upgrading, unit.Machine, unit.Error, upgrading ? progress : null);
            }
            services[name] = new EnvironmentProtocol.ServiceStatus(service.Formula, units, upgrade?.Running ?? false);
        }
        return new EnvironmentProtocol.Status(services);
    }
}
