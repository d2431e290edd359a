using Akka.Actor;
using Akka.Cluster.Tools.Client;
using Akka.Configuration;
using Ensemble.Hosting;
using Ensemble.Services;

namespace Ensemble.Cli;

/// <summary>
/// The CLI's line to an environment's controller: a remoting-only actor system and a ClusterClient to
/// the controller's receptionist. Every request has a deadline, so an unreachable environment is
/// answered within seconds.
/// </summary>
public sealed class ControllerClient : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly EnvironmentRecord _environment;

    public ControllerClient(EnvironmentRecord environment)
    {
        _environment = environment;
        var cliConf = Path.Combine(AppContext.BaseDirectory, "hocon", "cli.conf");
        var config = ConfigurationFactory.ParseString("""
                akka.actor.provider = remote
                akka.remote.dot-netty.tcp.hostname = "127.0.0.1"
                akka.remote.dot-netty.tcp.port = 0
                """)
            .WithFallback(File.Exists(cliConf) ? ConfigurationFactory.ParseString(File.ReadAllText(cliConf)) : Config.Empty)
            .WithFallback(EnsembleConfig.Defaults)
            .WithFallback(ClusterClientReceptionist.DefaultConfig());
        _system = ActorSystem.Create("ensemble-cli", config);
        var settings = ClusterClientSettings.Create(_system)
            .WithInitialContacts([ActorPath.Parse(environment.Contact)]);
        _client = _system.ActorOf(ClusterClient.Props(settings), "client");
    }

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Sends a request to the controller's service manager and waits for its answer.</summary>
    public async Task<object> AskAsync(object message, TimeSpan? timeout = null)
    {
        try
        {
            return await _client.Ask<object>(new ClusterClient.Send(EnsembleNode.ServicesPath, message), timeout ?? DefaultTimeout);
        }
        catch (AskTimeoutException)
        {
            throw new CliException(ExitCodes.Unavailable,
                $"environment '{_environment.Name}' is not answering at {_environment.Contact}; check it runs (see {_environment.Log}) or bootstrap it again.");
        }
    }

    public async Task<EnvironmentProtocol.Status> StatusAsync() =>
        await AskAsync(new EnvironmentProtocol.GetStatus()) as EnvironmentProtocol.Status
        ?? throw new CliException(ExitCodes.Failed, "the controller answered the status request with something else");

    public async ValueTask DisposeAsync() => await _system.Terminate();
}
