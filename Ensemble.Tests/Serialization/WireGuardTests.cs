using Akka.Actor;
using Akka.Configuration;
using Ensemble.Hosting;
using Ensemble.Serialization;
using Ensemble.Services;
using Xunit;

namespace Ensemble.Tests.Serialization;

/// <summary>A message whose mere deserialization leaves a mark: what a peer could do with a type name.</summary>
public sealed class Booby
{
    public string? Mark { get; set; }

    [System.Runtime.Serialization.OnDeserialized]
    private void Deserialized(System.Runtime.Serialization.StreamingContext _)
    {
        if (Mark is not null) File.WriteAllText(Mark, "deserialized a type a peer named");
    }
}

/// <summary>No type name read from the network is ever resolved, whatever a peer sends.</summary>
public sealed class WireGuardTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-wire-").FullName;
    private EnsembleNode _node = null!;

    public async Task InitializeAsync() => _node = await EnsembleNode.StartAsync(new NodeOptions(
        Path.Combine(_root, "data"), "wire", new HashSet<string> { NodeOptions.ControllerRole, NodeOptions.AgentRole }, "machine-0"));

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_message_a_peer_serialized_with_its_type_name_is_never_deserialized()
    {
        // A peer speaking Akka's defaults: Newtonsoft JSON with .NET type names for anything unbound.
        var rogueConfig = ConfigurationFactory.ParseString("""
                akka.actor.provider = remote
                akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
                akka.actor.serializers.json = "Akka.Serialization.NewtonSoftJsonSerializer, Akka"
                akka.actor.serialization-identifiers { "Akka.Serialization.NewtonSoftJsonSerializer, Akka" = 1 }
                akka.actor.serialization-settings.allow-unregistered-types = on
                akka.loglevel = ERROR
                """).WithFallback(EnsembleConfig.Defaults);
        using var rogue = ActorSystem.Create("rogue", rogueConfig);
        var mark = Path.Combine(_root, "mark");
        var services = rogue.ActorSelection($"{_node.Address}{EnsembleNode.ServicesPath}");

        services.Tell(new Booby { Mark = mark });
        // One association delivers in order: once the Pong is back, the JSON message was read — or refused.
        var pong = await services.Ask<object>(new EnvironmentRequests.Ping(), TimeSpan.FromSeconds(20));

        Assert.IsType<EnvironmentReplies.Pong>(pong);
        Assert.False(File.Exists(mark), "the node built an object of a type a peer named");
    }

    [Fact]
    public void The_node_has_no_type_name_serializer_and_sends_no_unbound_message()
    {
        var serialization = _node.System.Serialization;
        var json = """{"$type":"Ensemble.Tests.Serialization.Booby, Ensemble.Tests","Mark":"/tmp/x"}"""u8.ToArray();
        Assert.Contains("refused", Assert.ThrowsAny<Exception>(() => serialization.Deserialize(json, 1, typeof(Booby).AssemblyQualifiedName!)).GetBaseException().Message);
        Assert.Contains("refused", Assert.ThrowsAny<Exception>(() => serialization.Deserialize([1, 2, 3], 3, "")).GetBaseException().Message);
        Assert.ThrowsAny<Exception>(() => serialization.FindSerializerFor(new Booby()).ToBinary(new Booby()));
    }

    [Fact]
    public void A_failure_crosses_the_wire_as_a_sentence_without_its_exception_type()
    {
        var serializer = (EnsembleSerializer)_node.System.Serialization.FindSerializerFor(new Status.Failure(new Exception()));
        var failure = new Status.Failure(new InvalidOperationException("the store did not answer"));

        var back = Assert.IsType<Status.Failure>(serializer.FromBinary(serializer.ToBinary(failure), serializer.Manifest(failure)));

        Assert.IsType<WireFailure>(back.Cause);
        Assert.Equal("the store did not answer", back.Cause.Message);
    }
}
