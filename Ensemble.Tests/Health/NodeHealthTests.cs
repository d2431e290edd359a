using Akka.Actor;
using Ensemble.Health;
using Ensemble.Hosting;
using Ensemble.Tests.ZooKeeper;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Tests.Health;

/// <summary>
/// A running node answers /user/health and keeps its health file; a node whose ZooKeeper is stopped turns unhealthy
/// with the store named as the reason, in the answer and in the file, and healthy again when it is back; a controller
/// surveys every member and reports one that does not answer as unhealthy.
/// </summary>
public sealed class NodeHealthTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-health-").FullName;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private NodeOptions Options(string? zooKeeper = null) => new(Path.Combine(_root, "data"), "health-test",
        new HashSet<string> { NodeOptions.ControllerRole, NodeOptions.AgentRole }, "machine-0", ZooKeeper: zooKeeper);

    /// <summary>Checks every second, each probe within two: a test sees a change in a few seconds.</summary>
    private static readonly Akka.Configuration.Config Quick = Akka.Configuration.ConfigurationFactory.ParseString("""
        ensemble.health.interval = 1s
        ensemble.health.probe-timeout = 2s
        """);

    private static Task<NodeHealth> AskAsync(EnsembleNode node) =>
        node.System.ActorSelection(HealthActor.Path).Ask<NodeHealth>(new HealthRequests.GetNodeHealth(), TimeSpan.FromSeconds(10));

    private string HealthFilePath => Path.Combine(_root, "data", HealthFile.DefaultName);

    private async Task<NodeHealth> WaitForAsync(EnsembleNode node, Func<NodeHealth, bool> condition, string what)
    {
        NodeHealth? last = null;
        await LocalEnvironment.WaitUntilAsync(async () => condition(last = await AskAsync(node)), Deadline, what);
        output.WriteLine(string.Join("; ", last!.Reasons));
        return last;
    }

    [Fact]
    public async Task A_running_node_is_healthy_its_journal_answers_and_its_health_file_says_so()
    {
        await using var node = await EnsembleNode.StartAsync(Options(), Quick);
        var health = await WaitForAsync(node, h => h.Healthy, "the node to be healthy");
        Assert.True(health.Healthy, string.Join("; ", health.Reasons));
        Assert.Equal("Up", health.MemberStatus);
        Assert.Equal(["agent", "controller"], health.Roles);
        Assert.Equal("machine-0", health.Machine);
        Assert.Equal($"{node.Address.Host}:{node.Address.Port}", health.Address);
        Assert.Equal(["agent", "controller"], health.Stores.Select(s => s.Session).Order());
        Assert.All(health.Stores, s => Assert.Equal(("embedded", "connected"), (s.Backend, s.State)));
        Assert.True(health.Journal is { Reachable: true }, health.Journal?.Error);

        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(File.Exists(HealthFilePath)), Deadline, "the health file");
        var read = HealthDocument.Read(await File.ReadAllTextAsync(HealthFilePath));
        Assert.NotNull(read);
        Assert.True(read.Value.Healthy);
        Assert.True(HealthJudge.IsFresh(read.Value.CheckedAt, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30)));
        Assert.Equal(200, HealthEndpoint.StatusCodeFor(health));
        Assert.Equal(503, HealthEndpoint.StatusCodeFor(health with { Healthy = false }));
        Assert.Equal(503, HealthEndpoint.StatusCodeFor(null));

        // Rewritten every interval: a later check replaces it.
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(HealthDocument.Read(File.ReadAllText(HealthFilePath))?.CheckedAt > read.Value.CheckedAt),
            Deadline, "the health file to be rewritten");
    }

    [Fact]
    public async Task The_controller_surveys_every_member_and_one_that_does_not_answer_is_unhealthy()
    {
        await using var node = await EnsembleNode.StartAsync(Options(), Quick);
        // A fresh journal's first recovery can outlast a probe on a busy machine: the node is healthy once it is checked.
        await WaitForAsync(node, h => h.Healthy, "the node to be healthy");
        var survey = await node.System.ActorSelection(EnvironmentHealthActor.Path)
            .Ask<EnvironmentHealth>(new HealthRequests.GetEnvironmentHealth(), TimeSpan.FromSeconds(10));
        Assert.Equal("health-test", survey.Environment);
        var only = Assert.Single(survey.Nodes);
        Assert.True(only.Healthy, string.Join("; ", only.Reasons));
        Assert.True(survey.Healthy);

        // The member stays Up, but its health actor is gone: it cannot answer.
        await node.System.ActorSelection(HealthActor.Path).Ask<ActorIdentity>(new Identify(null), TimeSpan.FromSeconds(5))
            .ContinueWith(t => t.Result.Subject!.GracefulStop(TimeSpan.FromSeconds(5))).Unwrap();
        survey = await node.System.ActorSelection(EnvironmentHealthActor.Path)
            .Ask<EnvironmentHealth>(new HealthRequests.GetEnvironmentHealth(1), TimeSpan.FromSeconds(10));
        var silent = Assert.Single(survey.Nodes);
        Assert.False(silent.Healthy);
        Assert.Equal(["did not answer within 1 s (member status Up)"], silent.Reasons);
        Assert.False(survey.Healthy);
    }

    [Fact]
    public async Task A_node_with_a_health_port_answers_http_on_loopback_with_200_and_the_health_json()
    {
        var port = FreePort();
        await using var node = await EnsembleNode.StartAsync(Options(),
            Akka.Configuration.ConfigurationFactory.ParseString($"ensemble.health.http-port = {port}").WithFallback(Quick));
        await WaitForAsync(node, h => h.Healthy, "the node to be healthy");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        HttpResponseMessage? response = null;
        await LocalEnvironment.WaitUntilAsync(async () =>
            (response = await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode == System.Net.HttpStatusCode.OK, Deadline, "GET /health to answer 200");
        var read = HealthDocument.Read(await response!.Content.ReadAsStringAsync());
        Assert.True(read is { Healthy: true });
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task A_node_whose_zookeeper_stops_turns_unhealthy_naming_the_store_and_healthy_when_it_is_back()
    {
        using var zooKeeper = new ZooKeeperTestServer();
        var port = FreePort();
        await using var node = await EnsembleNode.StartAsync(Options(zooKeeper.ConnectionString),
            Akka.Configuration.ConfigurationFactory.ParseString($"ensemble.health.http-port = {port}").WithFallback(Quick));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var healthy = await WaitForAsync(node, h => h.Healthy, "the node to be healthy");
        Assert.All(healthy.Stores, s => Assert.Equal(("zookeeper", "connected"), (s.Backend, s.State)));

        zooKeeper.Stop();
        var sick = await WaitForAsync(node, h => !h.Healthy, "the node to be unhealthy");
        Assert.Contains(sick.Reasons, r => r.StartsWith("coordination store session (", StringComparison.Ordinal));
        Assert.All(sick.Stores, s => Assert.NotEqual("connected", s.State));
        Assert.True(sick.Journal is { Reachable: true }, "the journal is not the store");
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await http.GetAsync($"http://127.0.0.1:{port}/health")).StatusCode == System.Net.HttpStatusCode.ServiceUnavailable, Deadline, "GET /health to answer 503");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(HealthDocument.Read(File.ReadAllText(HealthFilePath)) is { Healthy: false } read
            && read.Reasons.Any(r => r.Contains("coordination store", StringComparison.Ordinal))), Deadline, "the health file to say unhealthy");

        zooKeeper.Start();
        await WaitForAsync(node, h => h.Healthy, "the node to be healthy again");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(HealthDocument.Read(File.ReadAllText(HealthFilePath)) is { Healthy: true }),
            Deadline, "the health file to say healthy again");
    }
}
