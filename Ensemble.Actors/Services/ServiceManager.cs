using Akka.Actor;
using Akka.Event;
using Ensemble.Topology;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

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
    /// <summary>This node's advertised HOST:PORT, as the controller directory names it.</summary>
    private readonly string _self = ((ExtendedActorSystem)Context.System).Provider.DefaultAddress is { Host: { } host, Port: { } port } ? $"{host}:{port}" : "local";

    private sealed record StartCoordinators(IReadOnlyList<string> Services);

    /// <summary>A deploy (or its preparation) of a service with no coordinator yet, once the number of services is known.</summary>
    private sealed record DeployCounted(IServiceCommand Deploy, IActorRef ReplyTo, int Services, string? Failure = null);

    private sealed class ListServices
    {
        public static readonly ListServices Instance = new();
    }

    private static readonly TimeSpan ListRetry = TimeSpan.FromSeconds(1);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    /// <summary>Unreadable records already logged: status is asked often, the log should say it once.</summary>
    private readonly HashSet<string> _loggedUnreadable = [];

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
        Receive<EnvironmentRequests.Ping>(_ => Sender.Tell(new EnvironmentReplies.Pong(_environment)));
        Receive<IServiceCommand>(_ => _storeAway is not null, m => Sender.Tell(StoreAway(m.Service)));
        Receive<EnvironmentRequests.GetStatus>(_ => _storeAway is not null, _ => Sender.Tell(StoreAway("")));
        ReceiveAny(_ => Stash.Stash());
    }

    private static readonly TimeSpan LogDeadline = TimeSpan.FromSeconds(10);

    /// <summary>Fetches a piece of a unit's log from the agent of its machine; a sentence when that cannot be done.</summary>
    private async Task<object> ReadLogAsync(EnvironmentRequests.ReadLog request)
    {
        var system = Context.System; // captured on the actor's thread; the rest runs after awaits
        var service = UnitNames.IsValid(request.Unit) ? UnitNames.ServiceOf(request.Unit) : request.Unit;
        CommandRejected Refuse(RejectionKind kind, string reason) => new(service, kind, reason);
        if (!UnitNames.IsValid(request.Unit))
            return Refuse(RejectionKind.InvalidInput, $"'{request.Unit}' is not a unit name; units are named <service>/<n>, e.g. wordpress/0");
        try
        {
            if (await _context.Topology.GetUnitAsync(request.Unit) is not { } unit)
                return Refuse(RejectionKind.NotFound, $"unit '{request.Unit}' does not exist; see 'ensemble status'");
            if (await _context.Topology.GetAgentAsync(unit.Machine) is not { } agent)
                return Refuse(RejectionKind.Unavailable,
                    $"the log of {request.Unit} is on machine {unit.Machine}, whose agent is down; read it when the machine is back ('ensemble status' shows the machines)");
            return await system.ActorSelection(agent.Address)
                .Ask<Units.UnitReplies.UnitLog>(new Units.UnitRequests.ReadUnitLog(request.Unit, request.From, request.Tail), LogDeadline);
        }
        catch (AskTimeoutException)
        {
            return Refuse(RejectionKind.Unavailable, $"machine of {request.Unit} did not answer within {LogDeadline.TotalSeconds:0} s; check it with 'ensemble status' and try again");
        }
        catch (Exception ex) when (ex is Coordination.StoreException or TimeoutException)
        {
            return Refuse(RejectionKind.Unavailable, $"the coordination store did not answer ({ex.GetBaseException().Message}); try again when it is back");
        }
    }

    /// <summary>Why nothing can be done until the controller has read the deployed services from the store.</summary>
    private string? _storeAway;

    private CommandRejected StoreAway(string service) => new(service, RejectionKind.Unavailable,
        $"the controller cannot read the coordination store yet ({_storeAway}); try again when the store is back");

    private void Ready()
    {
        Receive<CoordinatorStopped>(OnCoordinatorStopped);
        Receive<RestartCoordinator>(m => CoordinatorFor(m.Service));
        Receive<Relations.RelationRequests.AddRelation>(m => RelationManager.Forward(m));
        Receive<Relations.RelationRequests.RemoveRelation>(m => RelationManager.Forward(m));
        Receive<CoordinatorRecovered>(OnCoordinatorRecovered);
        Receive<CoordinatorRecoveryFailed>(m =>
        {
            _downReason[m.Service] = m.Reason;
            AnswerHeld(m.Service, m.Reason);
        });
        Receive<EnvironmentRequests.Ping>(_ => Sender.Tell(new EnvironmentReplies.Pong(_environment)));
        Receive<EnvironmentRequests.GetStatus>(AnswerStatus);
        Receive<EnvironmentRequests.ReadLog>(m => ReadLogAsync(m).PipeTo(Sender));
        Receive<DeployCounted>(m =>
        {
            var limit = _context.Settings.RequestLimits.ServicesPerEnvironment;
            if (m.Failure is not null)
                m.ReplyTo.Tell(new CommandRejected(m.Deploy.Service, RejectionKind.Unavailable,
                    $"the coordination store did not answer ({m.Failure}); try again when it is back"));
            else if (m.Services >= limit)
                m.ReplyTo.Tell(new CommandRejected(m.Deploy.Service, RejectionKind.InvalidInput,
                    $"the environment has {m.Services} services, the limit is {limit}; destroy one first"));
            else if (m.Deploy is PrepareDeploy prepare)
            {
                // Only asking: the rules of a service not deployed, and no coordinator made for it.
                if (ServiceLogic.Check(ServiceState.Empty(prepare.Service), prepare, _context.Settings.RequestLimits) is { } refused)
                    m.ReplyTo.Tell(refused);
                else
                    ServiceActor.AnswerPrepareDeploy(_context, prepare, m.ReplyTo);
            }
            else
                Send(m.Deploy, m.ReplyTo);
        });
        Receive<IServiceCommand>(m =>
        {
            if (!UnitNames.IsValidServiceName(m.Service))
            {
                Sender.Tell(new CommandRejected(m.Service, RejectionKind.InvalidInput,
                    $"'{m.Service}' is not a valid service name; use lowercase letters, digits and '-', starting with a letter, at most 64 characters"));
                return;
            }
            if (!Context.Child(CoordinatorName(m.Service)).IsNobody())
            {
                Send(m, Sender);
                return;
            }
            if (_restarts.ContainsKey(m.Service) && _downReason.TryGetValue(m.Service, out var down))
            {
                // Stopped by its journal and waiting to start again: not "not deployed".
                Sender.Tell(Unavailable(m.Service, down));
                return;
            }
            if (m is DeployService or PrepareDeploy)
            {
                var deploy = m;
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

    protected override void PreStart()
    {
        Context.ActorOf(Relations.RelationManager.Props(_context.Topology), "relations");
        ListServicesAsync();
    }

    private IActorRef RelationManager => Context.Child("relations");

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
        if (!child.IsNobody()) return child;
        _downReason.Remove(service);
        var coordinator = Context.ActorOf(ServiceActor.Props(service, _context), name);
        Context.WatchWith(coordinator, new CoordinatorStopped(service));
        _held[service] = [];
        return coordinator;
    }

    /// <summary>
    /// Requests for a coordinator still recovering from its journal, held here until it has: Akka.Persistence would
    /// hold them too, but drops them when the recovery fails, and the requester would only learn of it by a timeout.
    /// </summary>
    private readonly Dictionary<string, List<(IServiceCommand Command, IActorRef ReplyTo)>> _held = new(StringComparer.Ordinal);

    /// <summary>Why a coordinator stopped (its journal failed it), kept until it is started again.</summary>
    private readonly Dictionary<string, string> _downReason = new(StringComparer.Ordinal);

    private void Send(IServiceCommand command, IActorRef replyTo)
    {
        var coordinator = CoordinatorFor(command.Service);
        if (_held.TryGetValue(command.Service, out var held)) held.Add((command, replyTo));
        else coordinator.Tell(command, replyTo);
    }

    /// <summary>A coordinator recovered (sent by it): what waited for it is delivered, in order.</summary>
    internal sealed record CoordinatorRecovered(string Service);

    /// <summary>A coordinator could not read its journal (sent by it just before it stops).</summary>
    internal sealed record CoordinatorRecoveryFailed(string Service, string Reason);

    private void OnCoordinatorRecovered(CoordinatorRecovered recovered)
    {
        if (!_held.Remove(recovered.Service, out var held)) return;
        var coordinator = Context.Child(CoordinatorName(recovered.Service));
        foreach (var (command, replyTo) in held) coordinator.Tell(command, replyTo);
    }

    private void AnswerHeld(string service, string reason)
    {
        if (!_held.TryGetValue(service, out var held)) return;
        foreach (var (_, replyTo) in held) replyTo.Tell(Unavailable(service, reason));
        held.Clear();
    }

    private static CommandRejected Unavailable(string service, string reason) => new(service, RejectionKind.Unavailable,
        $"{reason}; it is started again by itself, so try again once the journal is back");

    /// <summary>A coordinator stopped: its journal refused a write or its recovery (the database is down, say).</summary>
    private sealed record CoordinatorStopped(string Service);

    private sealed record RestartCoordinator(string Service);

    /// <summary>How long each stopped coordinator waits before it is started again; reset once it stays up.</summary>
    private readonly Dictionary<string, (TimeSpan Wait, DateTime StartedAt)> _restarts = new(StringComparer.Ordinal);

    /// <summary>
    /// A coordinator stops only when its journal failed it (Akka.Persistence stops an actor whose write or recovery
    /// failed). It is started again with a growing wait (up to 10 s) until its recovery succeeds, so an upgrade it was
    /// running pauses while the journal is away and goes on by itself when it is back — no request needed.
    /// </summary>
    private void OnCoordinatorStopped(CoordinatorStopped stopped)
    {
        var reason = _downReason.TryGetValue(stopped.Service, out var known) ? known : $"the coordinator of '{stopped.Service}' stopped: its journal {_context.JournalLocation} failed it";
        _downReason[stopped.Service] = reason;
        AnswerHeld(stopped.Service, reason);
        _held.Remove(stopped.Service);
        var previous = _restarts.TryGetValue(stopped.Service, out var last) && DateTime.UtcNow - last.StartedAt < TimeSpan.FromMinutes(1) ? last.Wait : TimeSpan.Zero;
        var wait = Coordination.StoreTrouble.NextWait(previous);
        _restarts[stopped.Service] = (wait, DateTime.UtcNow + wait);
        _log.Warning("the coordinator of '{0}' stopped (its journal failed it); starting it again in {1:0.##} s", stopped.Service, wait.TotalSeconds);
        Timers.StartSingleTimer("restart-" + stopped.Service, new RestartCoordinator(stopped.Service), wait);
    }

    /// <summary>How long a status may take before the answer is "unavailable": less than a client's 10 s deadline.</summary>
    private static readonly TimeSpan StatusDeadline = TimeSpan.FromSeconds(8);

    private static readonly TimeSpan CoordinatorDeadline = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Answers a status request: the store's view with each upgrade's per-unit view, or, when the store
    /// cannot be read in time, why not. Never a failure message: the client gets a sentence it can show.
    /// </summary>
    private void AnswerStatus(EnvironmentRequests.GetStatus request)
    {
        var replyTo = Sender;
        var coordinators = Context.GetChildren().ToDictionary(c => c.Path.Name);
        var log = _log;
        var logged = _loggedUnreadable;
        StatusAsync(request.Only, coordinators).WaitAsync(StatusDeadline).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                foreach (var record in t.Result.Unreadable ?? [])
                    lock (logged)
                        if (logged.Add(record.Path))
                            log.Warning("status: skipped {0}, which cannot be read: {1}", record.Path, record.Reason);
                replyTo.Tell(t.Result);
                return;
            }
            var cause = t.Exception?.GetBaseException();
            var reason = cause switch
            {
                TimeoutException => $"its store did not answer within {StatusDeadline.TotalSeconds:0} s",
                Coordination.StoreException store => $"its store is unreachable ({store.Code})",
                _ => $"reading its store failed: {cause?.Message ?? "cancelled"}",
            };
            log.Warning("status: cannot answer, {0}", reason);
            replyTo.Tell(new EnvironmentReplies.StatusUnavailable(reason));
        }, TaskScheduler.Default);
    }

    /// <summary>
    /// The store's view of the services asked for (all when <paramref name="only"/> is null) with each running
    /// upgrade's per-unit view. Records that cannot be read are skipped and listed; a coordinator that does
    /// not answer makes that service's upgrade state unknown, never "not running".
    /// </summary>
    private async Task<EnvironmentReplies.Status> StatusAsync(IReadOnlyList<string>? only, IReadOnlyDictionary<string, IActorRef> coordinators)
    {
        var topology = _context.Topology;
        var unreadable = new List<UnreadableRecord>();
        var names = only is null
            ? await topology.ListServicesAsync()
            : only.Select(n => UnitNames.IsValid(n) ? UnitNames.ServiceOf(n) : n).Where(UnitNames.IsValidServiceName).Distinct().ToList();

        var upgrades = names.ToDictionary(n => n, n => coordinators.TryGetValue("service-" + n, out var coordinator)
            ? AskUpgradeAsync(coordinator, n)
            : Task.FromResult<(UpgradeStatus?, string?)>((null, null)));

        var services = new SortedDictionary<string, EnvironmentReplies.ServiceStatus>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (!UnitNames.IsValidServiceName(name))
            {
                unreadable.Add(new UnreadableRecord(topology.ServicePath(name), "not a service: service names are lowercase letters, digits and '-'"));
                continue;
            }
            ServiceRecord? service;
            try { service = await topology.GetServiceAsync(name); }
            catch (UnreadableRecordException ex)
            {
                unreadable.Add(ex.Record);
                continue;
            }
            if (service is null)
            {
                if (only is null) unreadable.Add(new UnreadableRecord(topology.ServicePath(name), "empty: not a service record"));
                continue;
            }
            var (upgrade, unknown) = await upgrades[name];
            var view = upgrade is { Running: true } ? upgrade.View?.Units.ToDictionary(u => u.Unit) : null;
            var units = new SortedDictionary<string, EnvironmentReplies.UnitStatus>(Comparer<string>.Create(
                (a, b) => UnitNames.NumberOf(a).CompareTo(UnitNames.NumberOf(b))));
            foreach (var unit in await topology.ListUnitsAsync(name, unreadable))
            {
                bool upgrading;
                try { upgrading = await topology.GetUpgradeFlagAsync(unit.Name) is not null; }
                catch (UnreadableRecordException ex)
                {
                    unreadable.Add(ex.Record);
                    upgrading = true;
                }
                var progress = view?.GetValueOrDefault(unit.Name)?.State;
                units[unit.Name] = new EnvironmentReplies.UnitStatus(unit.Formula, unit.State, upgrading, unit.Machine, unit.Error, progress, unit.Dying);
            }
            var running = unknown is null ? upgrade?.Running ?? false : units.Values.Any(u => u.Upgrading);
            services[name] = new EnvironmentReplies.ServiceStatus(service.Formula, units, running, unknown, service.Dying);
        }
        return new EnvironmentReplies.Status(services, unreadable, await MachinesAsync(services, only is not null), await ControllersAsync(),
            await RelationsAsync(only is null ? null : services.Keys.ToHashSet()));
    }

    /// <summary>Every relation (those of the services asked for, when only some were), by id, with its units.</summary>
    private async Task<IReadOnlyList<EnvironmentReplies.RelationStatus>> RelationsAsync(IReadOnlySet<string>? only)
    {
        var store = new Relations.RelationStore(_context.Topology);
        var relations = new List<EnvironmentReplies.RelationStatus>();
        foreach (var relation in await store.ListAsync())
        {
            if (only is not null && !relation.Endpoints.Any(e => only.Contains(e.Service))) continue;
            var units = (await store.ListMembersAsync(relation.Id)).Select(m => m.Unit).Order(Relations.UnitOrder.Instance).ToList();
            relations.Add(new EnvironmentReplies.RelationStatus(relation.Id, relation.Interface, relation.Endpoints.Select(e => e.ToString()).ToList(), relation.Dying, units));
        }
        return relations;
    }

    /// <summary>When this coordinator manager (and so this controller's turn as the active one) began.</summary>
    private readonly DateTimeOffset _activeSince = DateTimeOffset.UtcNow;

    /// <summary>The controllers announced in the store; the active one is this manager's node.</summary>
    private async Task<IReadOnlyList<EnvironmentReplies.ControllerStatus>> ControllersAsync()
    {
        var self = _self;
        var controllers = await new Formulas.Transfer.ControllerDirectory(_context.Topology).ListAsync();
        return controllers.Select(c => c.Node == self
                ? new EnvironmentReplies.ControllerStatus(c.Node, c.Since, true, _activeSince, c.Journal)
                : new EnvironmentReplies.ControllerStatus(c.Node, c.Since, false, null, c.Journal))
            .OrderByDescending(c => c.Active).ThenBy(c => c.Address, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Every machine with its agent's state and its units; when only some services were asked for, only the
    /// machines hosting their units.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, EnvironmentReplies.MachineStatus>> MachinesAsync(
        IReadOnlyDictionary<string, EnvironmentReplies.ServiceStatus> services, bool onlySome)
    {
        var units = services.Values.SelectMany(s => s.Units)
            .GroupBy(u => u.Value.Machine, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(u => u.Key).ToList(), StringComparer.Ordinal);
        var views = await Machines.MachineDirectory.ReadAsync(_context.Machines, _context.Topology, CoordinatorDeadline);
        var machines = new SortedDictionary<string, EnvironmentReplies.MachineStatus>(StringComparer.Ordinal);
        foreach (var view in views)
        {
            if (onlySome && !units.ContainsKey(view.Name)) continue;
            machines[view.Name] = new EnvironmentReplies.MachineStatus(Machines.MachineLogic.HostAndPort(view.Node), view.State, view.Since,
                units.GetValueOrDefault(view.Name) ?? []);
        }
        return machines;
    }

    private static async Task<(UpgradeStatus? Status, string? Unknown)> AskUpgradeAsync(IActorRef coordinator, string service)
    {
        try
        {
            return (await coordinator.Ask<UpgradeStatus>(new GetUpgradeStatus(service), CoordinatorDeadline), null);
        }
        catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException)
        {
            return (null, $"the coordinator of '{service}' did not answer within {CoordinatorDeadline.TotalSeconds:0} s");
        }
    }
}
