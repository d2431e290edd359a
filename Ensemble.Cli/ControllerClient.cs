using System.Collections.Immutable;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Configuration;
using Ensemble.Formulas.Transfer;
using Ensemble.Hosting;
using Ensemble.Services;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Cli;

/// <summary>
/// The CLI's line to an environment's controller: a remoting-only actor system and a ClusterClient to
/// the controller's receptionist. Every request has a deadline, and every way a request can go wrong
/// (no answer, a failure answer, an answer of another kind) ends in a <see cref="CliException"/>.
/// </summary>
public sealed class ControllerClient : IAsyncDisposable, IControllerChannel
{
    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly EnvironmentRecord _environment;

    public ControllerClient(EnvironmentRecord environment)
    {
        _environment = environment;
        var contacts = new List<ActorPath>();
        foreach (var point in environment.ContactPoints)
        {
            if (LocalAddress.ParseHostAndPort(point) is null || !ActorPath.TryParse(EnvironmentRecord.ReceptionistAt(point), out var path)) continue;
            contacts.Add(path);
        }
        if (contacts.Count == 0)
            throw new CliException(ExitCodes.Unavailable, environment.IsLocal
                ? $"environment '{environment.Name}' has no usable contact point ('{environment.Contact}'); bring it back with 'ensemble restart-environment {environment.Name}'."
                : $"environment '{environment.Name}' has no usable contact point; connect to it again with 'ensemble connect {environment.Name} FILE|ADDR:PORT'.");
        // The controller answers to the address this command advertises: the one this machine reaches it from,
        // not loopback (which would be the controller's own machine there).
        // Any controller this machine has a route to will do (one may be the controller that is gone).
        var local = contacts.Select(c => LocalAddress.Toward(c.Address.Host!, c.Address.Port ?? 0)).FirstOrDefault(a => a is not null)
            ?? throw new CliException(ExitCodes.Unavailable,
                $"this machine has no route to environment '{environment.Name}' at {string.Join(", ", contacts.Select(c => $"{c.Address.Host}:{c.Address.Port}"))}; check the address and the network.");
        var cliConf = Path.Combine(AppContext.BaseDirectory, "hocon", "cli.conf");
        var config = ConfigurationFactory.ParseString($$"""
                akka.actor.provider = remote
                akka.remote.dot-netty.tcp.hostname = "{{local}}"
                akka.remote.dot-netty.tcp.port = 0
                """)
            .WithFallback(File.Exists(cliConf) ? ConfigurationFactory.ParseString(File.ReadAllText(cliConf)) : Config.Empty)
            .WithFallback(EnsembleConfig.Defaults)
            .WithFallback(ClusterClientReceptionist.DefaultConfig())
            // The client wraps each request in the pub-sub Send; without the pub-sub serializer bound here that
            // envelope, request included, would go out as Newtonsoft JSON with .NET type names in it.
            .WithFallback(DistributedPubSub.DefaultConfig());
        _system = ActorSystem.Create("ensemble-cli", config);
        // Every controller is an initial contact: the client tries them all and keeps to one that answers.
        var settings = ClusterClientSettings.Create(_system).WithInitialContacts(contacts.ToImmutableHashSet());
        _client = _system.ActorOf(ClusterClient.Props(settings), "client");
    }

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public EnvironmentRecord Environment => _environment;

    Task<object> IControllerChannel.AskServicesAsync(object request, TimeSpan timeout) => AskAsync(request, timeout);

    Task<object> IControllerChannel.AskUploadsAsync(object request, TimeSpan timeout) => AskAsync(request, timeout, BundleTransfer.UploadsPath);

    void IControllerChannel.TellUploads(object message) => _client.Tell(new ClusterClient.Send(BundleTransfer.UploadsPath, message));

    /// <summary>Sends a request to the controller's service manager (or the actor at <paramref name="path"/>) and waits for its answer.</summary>
    public async Task<object> AskAsync(object message, TimeSpan? timeout = null, string path = EnsembleNode.ServicesPath)
    {
        var deadline = timeout ?? DefaultTimeout;
        try
        {
            return await _client.Ask<object>(new ClusterClient.Send(path, message), deadline);
        }
        catch (Exception ex) when (ex is AskTimeoutException or OperationCanceledException)
        {
            throw NotAnswering(deadline);
        }
        catch (Exception ex)
        {
            // The controller answered with a failure (Status.Failure) rather than one of our replies.
            throw new CliException(ExitCodes.Unavailable,
                $"the controller of environment '{_environment.Name}' failed to answer: {Sentence(ex.GetBaseException().Message)}; see {LogOf(_environment)}.");
        }
    }

    public CliException NotAnswering(TimeSpan waited) => new(ExitCodes.Unavailable, NotAnsweringMessage(_environment, waited));

    /// <summary>
    /// Why an environment did not answer: a local one's node is gone (restart-environment brings it back) or stuck;
    /// a connected one is not reachable from here, which only its host can tell more about.
    /// </summary>
    public static string NotAnsweringMessage(EnvironmentRecord environment, TimeSpan waited)
    {
        if (!environment.IsLocal)
            return $"environment '{environment.Name}' is not answering at {string.Join(", ", environment.ContactPoints)} (waited {waited.TotalSeconds:0} s); " +
                   "check that its controller runs and that this machine can reach it.";
        return NodeProcess.IsAlive(environment.Pid)
            ? $"environment '{environment.Name}' is not answering at {environment.Contact} (waited {waited.TotalSeconds:0} s); see {environment.Log}, or bring it back with 'ensemble restart-environment {environment.Name}'."
            : NotRunningMessage(environment);
    }

    /// <summary>The sentence for an environment whose node is gone, naming the way back that keeps its data.</summary>
    public static string NotRunningMessage(EnvironmentRecord environment) =>
        $"environment '{environment.Name}' is not running (its node, pid {environment.Pid}, has exited; see {environment.Log}); bring it back with its services and data with 'ensemble restart-environment {environment.Name}'.";

    /// <summary>Where to look when the controller fails: a local environment's log, or the controller's own.</summary>
    public static string LogOf(EnvironmentRecord environment) => environment.Log ?? "the controller's log on its host";

    /// <summary>The environment's status, restricted to the services and units named in <paramref name="only"/> (null: all).</summary>
    public async Task<EnvironmentReplies.Status> StatusAsync(IReadOnlyList<string>? only = null) =>
        await AskAsync(new EnvironmentRequests.GetStatus(only)) switch
        {
            EnvironmentReplies.Status status => status,
            EnvironmentReplies.StatusUnavailable unavailable => throw new CliException(ExitCodes.Unavailable,
                $"environment '{_environment.Name}' cannot tell its status now: {Sentence(unavailable.Reason)}; try again in a moment, and see {LogOf(_environment)} if it lasts."),
            var other => throw Rejected(other),
        };

    /// <summary>A refusal or an unexpected answer as the sentence and exit code the user gets.</summary>
    public static CliException Rejected(object reply) => reply switch
    {
        CommandRejected r => new CliException(ExitCodes.For(r.Kind), Sentence(r.Reason) + "."),
        UnitReplies.UnitCommandRejected r => new CliException(ExitCodes.Conflict, Sentence(r.Reason) + "."),
        Machines.MachineReplies.MachineRejected r => new CliException(ExitCodes.For(r.Kind), Sentence(r.Reason) + "."),
        _ => new CliException(ExitCodes.Failed, $"the controller answered with {reply.GetType().Name}, which this ensemble command does not understand; are the command and the environment of the same version?"),
    };

    private static string Sentence(string text) => text.Trim().TrimEnd('.');

    /// <summary>
    /// A mailbox in this command's actor system for the messages the controller pushes: whatever is sent
    /// with <see cref="Subscription.Send"/> has it as its sender, so answers and later pushes arrive there.
    /// </summary>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateUnbounded<object>();
        var inbox = _system.ActorOf(Props.Create(() => new ChannelActor(channel.Writer)));
        return new Subscription(this, inbox, channel.Reader);
    }

    /// <summary>See <see cref="Subscribe"/>.</summary>
    public sealed class Subscription(ControllerClient owner, IActorRef inbox, ChannelReader<object> messages) : IDisposable
    {
        public void Send(object message) =>
            owner._client.Tell(new ClusterClient.Send(EnsembleNode.ServicesPath, message), inbox);

        /// <summary>The next message, or null if none came within <paramref name="wait"/>.</summary>
        public async Task<object?> ReceiveAsync(TimeSpan wait)
        {
            using var timeout = new CancellationTokenSource(wait);
            try { return await messages.ReadAsync(timeout.Token); }
            catch (OperationCanceledException) { return null; }
        }

        public void Dispose() => owner._system.Stop(inbox);
    }

    private sealed class ChannelActor : ReceiveActor
    {
        public ChannelActor(ChannelWriter<object> writer) => ReceiveAny(m => writer.TryWrite(m));
    }

    public async ValueTask DisposeAsync()
    {
        try { await _system.Terminate().WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { /* the process exits anyway */ }
    }
}
