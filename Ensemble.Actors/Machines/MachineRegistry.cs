using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Ensemble.Topology;
using static Ensemble.Machines.MachineReplies;
using static Ensemble.Machines.MachineRequests;
using RejectionKind = Ensemble.Services.ServiceReplies.RejectionKind;

namespace Ensemble.Machines;

/// <summary>What the machine registry of a controller node needs to know about its environment and node.</summary>
/// <param name="ZooKeeper">the servers agents share the topology through; null: the embedded store, which no other host reaches.</param>
/// <param name="OwnMachine">the machine of this node's own agent role, if it has one.</param>
public sealed record MachineRegistrySettings(
    string Environment,
    string? ZooKeeper,
    string Root,
    string? OwnMachine,
    int MachinesLimit = 1000,
    TimeSpan? CheckInterval = null,
    bool SharedJournal = false)
{
    public TimeSpan Interval => CheckInterval ?? TimeSpan.FromSeconds(2);
}

/// <summary>
/// The machines of the environment, a cluster singleton on the controllers (its proxy at <c>/user/machines</c> on
/// every controller node, so exactly one registry decides however many controllers run): it adds and removes
/// machines (a record with the hash of a fresh join token), is the join gate agent nodes pass before they join
/// the cluster, downs any member that joined without being admitted, and keeps each machine's agent state
/// (started / down / lost, and since when) in its record, from cluster events and the agents' presence nodes.
/// The records are read once at start; every later change goes through this actor, write-through and in order.
/// </summary>
public sealed class MachineRegistry : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    public const string ActorName = "machines";
    public const string Path = "/user/" + ActorName;

    private readonly TopologyStore _topology;
    private readonly MachineRegistrySettings _settings;
    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _self;
    private readonly Dictionary<string, MachineRecord> _machines = new(StringComparer.Ordinal);
    /// <summary>Members by address (the form records keep), with their status and reachability.</summary>
    private readonly Dictionary<string, MemberView> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Address> _addresses = new(StringComparer.Ordinal);
    /// <summary>Members this registry downed, so each is logged once.</summary>
    private readonly HashSet<string> _downed = new(StringComparer.Ordinal);
    /// <summary>Records whose last write failed: written again at the next check.</summary>
    private readonly HashSet<string> _unwritten = new(StringComparer.Ordinal);
    private IReadOnlySet<string> _present = new HashSet<string>();
    /// <summary>Members with the controller role, and the controllers announced in the store (HOST:PORT), which are admitted without a machine.</summary>
    private readonly HashSet<string> _controllerMembers = new(StringComparer.Ordinal);
    private IReadOnlySet<string> _announcedControllers = new HashSet<string>();
    private readonly Formulas.Transfer.ControllerDirectory _directory;
    /// <summary>Store writes, chained so the store sees them in the order they were decided.</summary>
    private Task _writes = Task.CompletedTask;

    private sealed record Loaded(IReadOnlyList<MachineRecord> Machines, IReadOnlySet<string> Present, IReadOnlySet<string> Controllers);
    private sealed record PresenceRead(IReadOnlySet<string>? Present, IActorRef? ReplyTo);
    private sealed record ControllersRead(IReadOnlySet<string>? Controllers);
    private sealed record WriteFailed(string Machine, string Reason);
    private sealed record Checked(IReadOnlyList<string> Units, RemoveMachine Request, IActorRef ReplyTo, string? Failure);

    private sealed class Check
    {
        public static readonly Check Instance = new();
    }

    public ITimerScheduler Timers { get; set; } = null!;
    public IStash Stash { get; set; } = null!;

    public MachineRegistry(TopologyStore topology, MachineRegistrySettings settings)
    {
        _topology = topology;
        _settings = settings;
        _self = _cluster.SelfAddress.ToString();
        _directory = new Formulas.Transfer.ControllerDirectory(topology);
        Loading();
    }

    public static Props Props(TopologyStore topology, MachineRegistrySettings settings) =>
        Akka.Actor.Props.Create(() => new MachineRegistry(topology, settings));

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        Load();
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Load()
    {
        var topology = _topology;
        var directory = _directory;
        Task.Run(async () => new Loaded(await topology.ListMachinesAsync(), await topology.ListPresentMachinesAsync(),
                (await directory.ListAsync()).Select(c => c.Node).ToHashSet(StringComparer.Ordinal)))
            .PipeTo(Self);
    }

    /// <summary>Until the records are read nothing is decided: a member not yet known to be admitted is not downed.</summary>
    private void Loading()
    {
        Receive<Loaded>(loaded =>
        {
            foreach (var machine in loaded.Machines) _machines[machine.Name] = machine;
            _present = loaded.Present;
            _announcedControllers = loaded.Controllers;
            RecordOwnMachine();
            Become(Ready);
            Stash.UnstashAll();
            Timers.StartPeriodicTimer("check", Check.Instance, _settings.Interval);
            foreach (var node in _members.Keys.ToList()) Guard(node);
            Evaluate();
        });
        Receive<Status.Failure>(failure =>
        {
            _log.Warning("cannot read the machines from the store yet, trying again in 1 s: {0}", failure.Cause.GetBaseException().Message);
            Timers.StartSingleTimer("load", Check.Instance, TimeSpan.FromSeconds(1));
        });
        Receive<Check>(_ => Load());
        Receive<ClusterEvent.IClusterDomainEvent>(e => OnClusterEvent(e));
        ReceiveAny(_ => Stash.Stash());
    }

    private void Ready()
    {
        Receive<ClusterEvent.IClusterDomainEvent>(e =>
        {
            var node = OnClusterEvent(e);
            if (node is not null) Guard(node);
            Evaluate();
        });
        Receive<Check>(_ =>
        {
            foreach (var name in _unwritten.ToList())
            {
                _unwritten.Remove(name);
                if (_machines.TryGetValue(name, out var record)) Write(record);
            }
            ReadPresence(null);
        });
        Receive<PresenceRead>(read =>
        {
            if (read.Present is not null) _present = read.Present;
            Evaluate();
            read.ReplyTo?.Tell(new MachineViews(Views()));
        });
        Receive<WriteFailed>(failed =>
        {
            _unwritten.Add(failed.Machine);
            _log.Warning("could not record machine '{0}' in the store, trying again: {1}", failed.Machine, failed.Reason);
        });
        Receive<ControllersRead>(read =>
        {
            if (read.Controllers is not null) _announcedControllers = read.Controllers;
            foreach (var node in _members.Keys.ToList()) Guard(node, readIfUnknown: false);
        });
        Receive<ControllerMachine>(OnControllerMachine);
        Receive<PlanHa>(OnPlanHa);
        Receive<GetMachines>(_ => ReadPresence(Sender));
        Receive<AddMachine>(OnAdd);
        Receive<RemoveMachine>(OnRemove);
        Receive<Checked>(OnRemoveChecked);
        Receive<JoinMachine>(OnJoin);
        Receive<Forget>(forget => _machines.Remove(forget.Machine));
        Receive<Restore>(restore => _machines.TryAdd(restore.Machine.Name, restore.Machine));
    }

    // ---- the cluster ----

    /// <summary>Keeps the member table; returns the address of a member that may have to be downed.</summary>
    private string? OnClusterEvent(ClusterEvent.IClusterDomainEvent e)
    {
        switch (e)
        {
            case ClusterEvent.MemberRemoved removed:
                var gone = removed.Member.Address.ToString();
                _members.Remove(gone);
                _controllerMembers.Remove(gone);
                _addresses.Remove(gone);
                _downed.Remove(gone);
                return null;
            case ClusterEvent.IMemberEvent changed:
                var node = changed.Member.Address.ToString();
                if (changed.Member.HasRole(Hosting.NodeOptions.ControllerRole)) _controllerMembers.Add(node);
                _members[node] = new MemberView(changed.Member.Status, _members.GetValueOrDefault(node)?.Reachable ?? true);
                _addresses[node] = changed.Member.Address;
                return node;
            case ClusterEvent.UnreachableMember unreachable:
                Reach(unreachable.Member, false);
                return null;
            case ClusterEvent.ReachableMember reachable:
                Reach(reachable.Member, true);
                return null;
            default:
                return null;
        }
    }

    private void Reach(Member member, bool reachable)
    {
        var node = member.Address.ToString();
        _members[node] = new MemberView(member.Status, reachable);
        _addresses[node] = member.Address;
    }

    /// <summary>
    /// Akka's join protocol has no hook to refuse a node, so a member that is neither this node nor the node last
    /// admitted for a machine is downed as soon as it is seen: a node that skipped the join gate joins nothing.
    /// </summary>
    /// <remarks>
    /// A controller is admitted by its record in the store's controller directory, written before it joins (a node
    /// that can write the store holds the environment's keys already); one not seen there yet is looked up first.
    /// </remarks>
    private void Guard(string node, bool readIfUnknown = true)
    {
        if (!_members.TryGetValue(node, out var member)) return;
        if (member.Status is not (MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up)) return;
        if (MachineLogic.IsAdmitted(node, _self, _machines.Values)) return;
        if (_controllerMembers.Contains(node))
        {
            if (_announcedControllers.Contains(MachineLogic.HostAndPort(node) ?? "")) return;
            if (readIfUnknown)
            {
                var directory = _directory;
                directory.ListAsync().PipeTo(Self,
                    success: list => new ControllersRead(list.Select(c => c.Node).ToHashSet(StringComparer.Ordinal)),
                    failure: _ => new ControllersRead(null));
                return;
            }
        }
        if (!_downed.Add(node)) return;
        _log.Warning("downing {0}: it is in the cluster without being admitted (it is not the node last admitted for any machine)", node);
        _cluster.Down(_addresses[node]);
    }

    private void ReadPresence(IActorRef? replyTo)
    {
        var topology = _topology;
        topology.ListPresentMachinesAsync().PipeTo(Self,
            success: present => new PresenceRead(present, replyTo),
            failure: _ => new PresenceRead(null, replyTo));
    }

    /// <summary>Moves every machine whose agent changed state, and records when.</summary>
    private void Evaluate()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var record in _machines.Values.ToList())
        {
            var member = record.Node is null ? null : _members.GetValueOrDefault(record.Node);
            var state = MachineLogic.StateOf(_present.Contains(record.Name), member);
            var moved = MachineLogic.WithState(record, state, now);
            if (ReferenceEquals(moved, record)) continue;
            _log.Info("machine '{0}' ({1}): {2}{3}", record.Name, record.Node ?? "no node yet", AgentStates.Name(state),
                record.Since is null ? "" : $" (was {AgentStates.Name(record.State)})");
            _machines[record.Name] = moved;
            Write(moved);
        }
    }

    private IReadOnlyList<MachineView> Views() =>
        _machines.Values.OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new MachineView(m.Name, m.Node, m.State, m.Since)).ToList();

    // ---- requests ----

    private void OnAdd(AddMachine request)
    {
        var name = request.Machine ?? MachineNames.NextFree(_machines.Keys.ToHashSet(StringComparer.Ordinal));
        MachineRejected Reject(RejectionKind kind, string reason) => new(name, kind, reason);
        if (!MachineNames.IsValid(name))
        {
            Sender.Tell(Reject(RejectionKind.InvalidInput, $"'{name}' is not a valid machine name; use {MachineNames.Rule}"));
            return;
        }
        if (_settings.ZooKeeper is null)
        {
            Sender.Tell(Reject(RejectionKind.Unavailable,
                $"environment '{_settings.Environment}' keeps its topology in its controller's embedded store, which machines on other hosts cannot reach; " +
                "start its controller with --zookeeper to add machines"));
            return;
        }
        if (name == _settings.OwnMachine || (_machines.TryGetValue(name, out var own) && own.TokenHash is null))
        {
            Sender.Tell(Reject(RejectionKind.Conflict, $"machine '{name}' is a controller's own machine; pick another name"));
            return;
        }
        if (_machines.TryGetValue(name, out var existing))
        {
            Sender.Tell(Reject(RejectionKind.Conflict,
                $"machine '{name}' already exists (added {existing.AddedAt:yyyy-MM-dd HH:mm:ss}Z); pick another name, or remove it with 'ensemble remove-machine {name}' to issue a new token"));
            return;
        }
        if (_machines.Count >= _settings.MachinesLimit)
        {
            Sender.Tell(Reject(RejectionKind.InvalidInput,
                $"the environment has {_machines.Count} machines, the limit is {_settings.MachinesLimit}; remove one first"));
            return;
        }
        var (token, hash) = MachineTokens.Issue();
        var now = DateTimeOffset.UtcNow;
        var record = new MachineRecord(name, hash, now, State: AgentState.Down, Since: now);
        _machines[name] = record;
        var replyTo = Sender;
        var added = new MachineAdded(name, token, Controllers().Select(n => MachineLogic.HostAndPort(n)!).ToList(), _settings.Environment);
        var topology = _topology;
        var self = Self;
        _writes = _writes.ContinueWith(_ => topology.CreateMachineAsync(record), TaskScheduler.Default).Unwrap();
        _writes.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                replyTo.Tell(added);
                return;
            }
            self.Tell(new Forget(name));
            replyTo.Tell(t.Exception?.GetBaseException() is Coordination.NodeExistsException
                ? Reject(RejectionKind.Conflict, $"machine '{name}' already exists; pick another name")
                : Reject(RejectionKind.Unavailable, $"the controller could not record machine '{name}' in its store ({t.Exception?.GetBaseException().Message}); try again when the store is back"));
        }, TaskScheduler.Default);
        _log.Info("added machine '{0}'", name);
    }

    private sealed record Forget(string Machine);

    private void OnRemove(RemoveMachine request)
    {
        var name = request.Machine;
        if (!_machines.TryGetValue(name, out var existing))
        {
            Sender.Tell(new MachineRejected(name, RejectionKind.NotFound, $"machine '{name}' does not exist; see 'ensemble status' for the machines"));
            return;
        }
        if (name == _settings.OwnMachine || existing.TokenHash is null)
        {
            Sender.Tell(new MachineRejected(name, RejectionKind.Conflict, $"machine '{name}' is the controller's own machine; it goes with the controller"));
            return;
        }
        var replyTo = Sender;
        var topology = _topology;
        Task.Run(async () =>
        {
            var units = new List<string>();
            foreach (var service in await topology.ListServicesAsync())
                units.AddRange((await topology.ListUnitsAsync(service)).Where(u => u.Machine == name).Select(u => u.Name));
            return units;
        }).PipeTo(Self,
            success: units => new Checked(units, request, replyTo, null),
            failure: ex => new Checked([], request, replyTo, ex.GetBaseException().Message));
    }

    private void OnRemoveChecked(Checked done)
    {
        var name = done.Request.Machine;
        if (done.Failure is not null)
        {
            done.ReplyTo.Tell(new MachineRejected(name, RejectionKind.Unavailable, $"the controller could not read the units of machine '{name}' ({done.Failure}); try again when the store is back"));
            return;
        }
        if (done.Units.Count > 0)
        {
            done.ReplyTo.Tell(new MachineRejected(name, RejectionKind.Conflict,
                $"machine '{name}' hosts {string.Join(", ", done.Units.Take(10))}{(done.Units.Count > 10 ? $" and {done.Units.Count - 10} more" : "")}; remove them first with 'ensemble remove-unit'"));
            return;
        }
        if (!_machines.Remove(name, out var record))
        {
            done.ReplyTo.Tell(new MachineRemoved(name));
            return;
        }
        _unwritten.Remove(name);
        var topology = _topology;
        _writes = _writes.ContinueWith(_ => topology.DeleteMachineAsync(name), TaskScheduler.Default).Unwrap();
        var replyTo = done.ReplyTo;
        var self = Self;
        _writes.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully) replyTo.Tell(new MachineRemoved(name));
            else
            {
                self.Tell(new Restore(record));
                replyTo.Tell(new MachineRejected(name, RejectionKind.Unavailable, $"the controller could not remove machine '{name}' from its store ({t.Exception?.GetBaseException().Message}); try again when the store is back"));
            }
        }, TaskScheduler.Default);
        _log.Info("removed machine '{0}': its token is revoked", name);
        // Its node, if it is a member, is no longer admitted.
        if (record.Node is not null) Guard(record.Node);
    }

    private sealed record Restore(MachineRecord Machine);

    private void OnJoin(JoinMachine request)
    {
        var record = MachineNames.IsValid(request.Machine) ? _machines.GetValueOrDefault(request.Machine) : null;
        if (MachineLogic.CheckJoin(request, record, _settings.ZooKeeper is not null, Context.System.Name) is { } refusal)
        {
            _log.Warning("refused to admit a node: {0}", refusal.ForLog);
            Sender.Tell(new JoinRefused(request.Machine, refusal.ForNode));
            return;
        }
        var previous = record!.Node;
        var admitted = record with { Node = request.Node, AdmittedAt = DateTimeOffset.UtcNow };
        _machines[admitted.Name] = admitted;
        _log.Info("admitted machine '{0}' at {1}", admitted.Name, request.Node);
        // The machine's node started again (a new port, or after it was downed): its previous node must go.
        if (previous is not null && previous != request.Node) Guard(previous);
        var replyTo = Sender;
        var reply = new MachineAdmitted(admitted.Name, _settings.Environment, Controllers(), _settings.ZooKeeper!, _settings.Root);
        Write(admitted).ContinueWith(t => replyTo.Tell(t.IsCompletedSuccessfully
                ? reply
                : new MachineRejected(admitted.Name, RejectionKind.Unavailable, $"the controller could not record the admission ({t.Exception?.GetBaseException().Message}); the node tries again")),
            TaskScheduler.Default);
    }

    /// <summary>The controllers' node addresses, this one first: the seed nodes agents join.</summary>
    private IReadOnlyList<string> Controllers() =>
        _cluster.State.Members
            .Where(m => m.HasRole("controller") && m.Status == MemberStatus.Up && m.Address.ToString() != _self)
            .Select(m => m.Address.ToString()).Prepend(_self).ToList();

    private void RecordOwnMachine()
    {
        if (_settings.OwnMachine is { } own) RecordControllerMachine(own, _self);
    }

    private void RecordControllerMachine(string machine, string node)
    {
        var now = DateTimeOffset.UtcNow;
        var record = _machines.GetValueOrDefault(machine) ?? new MachineRecord(machine, null, now, State: AgentState.Down, Since: now);
        if (record.Node == node && _machines.ContainsKey(machine)) return;
        record = record with { Node = node, AdmittedAt = now };
        _machines[machine] = record;
        Write(record);
        Evaluate();
    }

    private void OnControllerMachine(ControllerMachine request)
    {
        var from = Sender.Path.Address.HasGlobalScope ? Sender.Path.Address.ToString() : _self;
        if (from != request.Node || !(_controllerMembers.Contains(from) || from == _self) || !MachineNames.IsValid(request.Machine))
        {
            _log.Warning("ignored a claim of machine '{0}' for {1} from {2}: only a controller names its own machine", request.Machine, request.Node, from);
            return;
        }
        if (_machines.TryGetValue(request.Machine, out var existing) && existing.TokenHash is not null)
        {
            _log.Warning("controller {0} serves machine '{1}', which was added with a join token for another node; not recorded", from, request.Machine);
            return;
        }
        RecordControllerMachine(request.Machine, request.Node);
    }

    private void OnPlanHa(PlanHa request)
    {
        var running = Controllers().Select(n => MachineLogic.HostAndPort(n)!).ToList();
        MachineRejected Reject(string reason) => new("", RejectionKind.InvalidInput, reason);
        if (request.Controllers is < 3 or > 7 || request.Controllers % 2 == 0)
            Sender.Tell(Reject($"{request.Controllers} controllers cannot keep a majority well; ask for 3, 5 or 7"));
        else if (_settings.ZooKeeper is null)
            Sender.Tell(Reject($"environment '{_settings.Environment}' keeps its topology in its controller's embedded store, which other controllers cannot reach; " +
                               "start its controller with --zookeeper first"));
        else if (!_settings.SharedJournal)
            Sender.Tell(Reject($"the controller of environment '{_settings.Environment}' journals to SQLite on its own disk; several controllers share one PostgreSQL " +
                               "journal: restart it with --journal CONNECTION first"));
        else
            Sender.Tell(new HaPlan(_settings.Environment, _settings.ZooKeeper, _settings.Root, running, Math.Max(0, request.Controllers - running.Count)));
    }

    /// <summary>Queues a write of the record behind the others; a failure is retried at the next check.</summary>
    private Task Write(MachineRecord record)
    {
        var topology = _topology;
        var self = Self;
        _writes = _writes.ContinueWith(_ => topology.PutMachineAsync(record), TaskScheduler.Default).Unwrap();
        var written = _writes;
        written.ContinueWith(t =>
        {
            if (!t.IsCompletedSuccessfully) self.Tell(new WriteFailed(record.Name, t.Exception?.GetBaseException().Message ?? "cancelled"));
        }, TaskScheduler.Default);
        return written;
    }
}
