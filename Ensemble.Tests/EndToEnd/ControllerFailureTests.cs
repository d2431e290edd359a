using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Configuration;
using Ensemble.Hosting;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// A controller that answers every request with a failure (Status.Failure) instead of a reply: the installed
/// command turns it into one sentence and exit 7. The controller here is a stand-in in the test process, the
/// only way to make a real receptionist hand out failures on purpose; the command under test is the real one.
/// </summary>
public sealed class ControllerFailureTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-e2e-failure-").FullName;
    private ActorSystem _system = null!;
    private EnsembleCommand Ensemble => new(Path.Combine(_root, "home"));

    private sealed class FailingController : ReceiveActor
    {
        public FailingController() =>
            ReceiveAny(_ => Sender.Tell(new Status.Failure(new InvalidOperationException("the journal is locked by another process"))));
    }

    public async Task InitializeAsync()
    {
        var config = ConfigurationFactory.ParseString("""
                akka.loglevel = OFF
                akka.actor.provider = cluster
                akka.cluster.roles = [controller]
                akka.remote.dot-netty.tcp.hostname = "127.0.0.1"
                akka.remote.dot-netty.tcp.port = 0
                akka.extensions = ["Akka.Cluster.Tools.Client.ClusterClientReceptionistExtensionProvider, Akka.Cluster.Tools"]
                """)
            .WithFallback(EnsembleConfig.Defaults)
            .WithFallback(ClusterClientReceptionist.DefaultConfig())
            .WithFallback(DistributedPubSub.DefaultConfig());
        _system = ActorSystem.Create(EnsembleNode.SystemName, config);
        var cluster = Cluster.Get(_system);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        await cluster.JoinAsync(cluster.SelfAddress);
        await up.Task.WaitAsync(TimeSpan.FromSeconds(30));
        ClusterClientReceptionist.Get(_system).RegisterService(_system.ActorOf(Props.Create(() => new FailingController()), "services"));

        var directory = Ensemble.EnvironmentDirectory("broken");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "environment.json"), JsonSerializer.Serialize(new
        {
            name = "broken", contact = $"{cluster.SelfAddress}/system/receptionist",
            pid = Environment.ProcessId, dataDirectory = directory, log = Path.Combine(directory, "agent.log"),
        }));
    }

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("status")]
    [InlineData("status", "web", "--format", "yaml")]
    [InlineData("upgrade-formula", "--wait", "web")]
    [InlineData("remove-unit", "web/0", "web/1")]
    [InlineData("resolved", "web/0")]
    [InlineData("add-unit", "-n2", "web")]
    public async Task A_failure_answer_becomes_one_sentence_and_exit_7(params string[] args)
    {
        var result = await Ensemble.RunAsync([.. args, "-e", "broken"]);
        output.WriteLine(result.ToString());
        Assert.Equal(7, result.ExitCode);
        Assert.False(result.HasStackTrace, result.ToString());
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("ensemble: the controller of environment 'broken' failed to answer: the journal is locked by another process", lines[0]);
    }
}
