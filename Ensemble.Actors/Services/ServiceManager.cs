using Akka.Actor;
using Akka.Event;
using Ensemble.Topology;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Services;

/// <summary>
/// Routes each service request to that service's coordinator, starting it (and so its recovery) on first
/// use, and answers questions about the environment as a whole.
/// </summary>
public sealed class ServiceManager : ReceiveActor, IWithUnboundedStash, IWithTimers
{
    public const string ActorName = "services";

    private readonly ControllerContext _context;
    private readonly string _environment;

    private sealed record StartCoordinators(IReadOnlyList<string> Services);

    /// <summary>A deploy of a service with no coordinator yet, once the number of services is known.</summary>
    private sealed record DeployCounted(DeployService Deploy, IActorRef ReplyTo, int Services, string? Failure = null);

    private sealed class ListServices
    {
        public static readonly ListServices Instance = new();
    }

    private static readonly TimeSpan ListRetry = TimeSpan.FromSeconds(1);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public ITimerScheduler Timers { get; set; } = null!;

    public IStash Stash { get; set; } = null!;

    public ServiceManager(ControllerContext context, string environment)
    {
        _context = context;
        _environment = environment;
        // Every deployed service's coordinator starts with the controller, so an upgrade a crash
        // interrupted resumes at once rather than when the service is next asked for something.
        // Until then requests wait (a service without a coordinator is one that is not deployed) — or,
        // while the store cannot be listed, are told so at once instead of waiting for a timeout.
        Receive<StartCoordinators>(m =>
        {
            foreach (var service in m.Services.Where(UnitNames.IsValidServiceName)) CoordinatorFor(service);
            _storeAway = null;
            Stash.UnstashAll();
            Become(Ready);
        });
        Receive<Status.Failure>(failure =>
        {
            _storeAway = failure.Cause.GetBaseException().Message;
            _log.Warning("could not list the deployed services, trying again in {0}: {1}", ListRetry, _storeAway);
            Timers.StartSingleTimer("list-services", ListServices.Instance, ListRetry);
            Stash.UnstashAll();
        });
        Receive<ListServices>(_ => ListServicesAsync());
        Receive<EnvironmentProtocol.Ping>(_ => Sender.Tell(new EnvironmentProtocol.Pong(_environment)));
        Receive<IServiceCommand>(_ => _storeAway is not null, m => Sender.Tell(StoreAway(m.Service)));
        Receive<EnvironmentProtocol.GetStatus>(_ => _storeAway is not null, _ => Sender.Tell(StoreAway("")));
        ReceiveAny(_ => Stash.Stash());
    }

    /// <summary>Why nothing can be done until the controller has read the deployed services from the store.</summary>
    private string? _storeAway;

    private CommandRejected StoreAway(string service) => new(service, RejectionKind.Unavailable,
        $"the controller cannot read the coordination store yet ({_storeAway}); try again when the store is back");

    private void Ready()
    {
        Receive<EnvironmentProtocol.Ping>(_ => Sender.Tell(new EnvironmentProtocol.Pong(_environment)));
        Receive<EnvironmentProtocol.GetStatus>(_ =>
            StatusAsync(Context.GetChildren().ToDictionary(c => c.Path.Name)).PipeTo(Sender));
        Receive<DeployCounted>(m =>
        {
            var limit = _context.Settings.RequestLimits.ServicesPerEnvironment;
            if (m.Failure is not null)
                m.ReplyTo.Tell(new CommandRejected(m.Deploy.Service, RejectionKind.Unavailable,
                    $"the coordination store did not answer ({m.Failure}); try again when it is back"));
            else if (m.Services >= limit)
                m.ReplyTo.Tell(new CommandRejected(m.Deploy.Service, RejectionKind.InvalidInput,
                    $"the environment has {m.Services} services, the limit is {limit}; destroy one first"));
            else
                CoordinatorFor(m.Deploy.Service).Tell(m.Deploy, m.ReplyTo);
        });
        Receive<IServiceCommand>(m =>
        {
            if (!UnitNames.IsValidServiceName(m.Service))
            {
                Sender.Tell(new CommandRejected(m.Service, RejectionKind.InvalidInput,
                    $"'{m.Service}' is not a valid service name; use lowercase letters, digits and '-', starting with a letter, at most 64 characters"));
                return;
            }
            var coordinator = Context.Child(CoordinatorName(m.Service));
            if (!coordinator.IsNobody())
            {
                coordinator.Forward(m);
                return;
            }
            if (m is DeployService deploy)
            {
                // A new service: count the deployed ones first (a coordinator is only made for a service that may exist).
                var replyTo = Sender;
                _context.Topology.ListServicesAsync().PipeTo(Self,
                    success: services => new DeployCounted(deploy, replyTo, services.Count),
                    failure: ex => new DeployCounted(deploy, replyTo, -1, ex.GetBaseException().Message));
                return;
            }
            // Nothing was ever deployed under this name: answer without starting (and keeping) a coordinator for it.
            Sender.Tell(ServiceLogic.Check(ServiceState.Empty(m.Service), m, _context.Settings.RequestLimits)
                ?? new CommandRejected(m.Service, RejectionKind.NotFound, $"service '{m.Service}' is not deployed; check the name with 'ensemble status'"));
        });
    }

    public static Props Props(ControllerContext context, string environment = "local") =>
        Akka.Actor.Props.Create(typeof(ServiceManager), context, environment);

    protected override void PreStart() => ListServicesAsync();

    private void ListServicesAsync() =>
        _context.Topology.ListServicesAsync().PipeTo(Self, success: services => new StartCoordinators(services));

    /// <summary>
    /// A coordinator that fails unexpectedly restarts and recovers from its journal; its sagas are
    /// restarted by it in turn, each recovering its own journal.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(10, TimeSpan.FromMinutes(1), _ => Directive.Restart);

    private static string CoordinatorName(string service) => "service-" + service;

    private IActorRef CoordinatorFor(string service)
    {
        var name = CoordinatorName(service);
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
