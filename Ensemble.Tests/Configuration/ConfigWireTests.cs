using Akka.Actor;
using Ensemble.Formulas;
using Ensemble.Hosting;
using Ensemble.Serialization;
using Xunit;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.Configuration;

/// <summary>The configuration messages cross the wire under fixed manifests, with their values intact.</summary>
public sealed class ConfigWireTests : IAsyncLifetime
{
    private ActorSystem _system = null!;

    public Task InitializeAsync()
    {
        _system = ActorSystem.Create("config-wire-test", EnsembleConfig.Defaults);
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => _system.Terminate();

    private T RoundTrip<T>(T message, string manifest) where T : notnull
    {
        var serializer = Assert.IsType<EnsembleSerializer>(_system.Serialization.FindSerializerFor(message));
        Assert.Equal(manifest, serializer.Manifest(message));
        return Assert.IsType<T>(serializer.FromBinary(serializer.ToBinary(message), manifest));
    }

    [Fact]
    public void Configuration_requests_and_replies_round_trip()
    {
        var set = RoundTrip(new SetConfig("web", new Dictionary<string, string> { ["port"] = "81", ["title"] = "" }), "wire.ServiceRequests.SetConfig");
        Assert.Equal(new Dictionary<string, string> { ["port"] = "81", ["title"] = "" }, set.Pairs);
        Assert.Equal(new GetConfig("web"), RoundTrip(new GetConfig("web"), "wire.ServiceRequests.GetConfig"));

        var changed = RoundTrip(new ConfigSet("web", ["port"], 4), "wire.ServiceReplies.ConfigSet");
        Assert.Equal(["port"], changed.Changed);
        Assert.Equal(4, changed.Version);

        var view = RoundTrip(new ConfigView("web", new FormulaId("web", 2), 4, [new ConfigEntry("port", "int", "8080", "Port", "81", true)]),
            "wire.ServiceReplies.ConfigView");
        Assert.Equal(new ConfigEntry("port", "int", "8080", "Port", "81", true), Assert.Single(view.Options));
        Assert.Equal(new FormulaId("web", 2), view.Formula);

        var deploy = RoundTrip(new DeployService("web", new FormulaRef(new FormulaId("web", 1), new string('a', 64)), "/srv/r", 2, null,
            new Dictionary<string, string> { ["port"] = "81" }), "wire.ServiceRequests.DeployService");
        Assert.Equal("81", deploy.Config!["port"]);

        var started = RoundTrip(new UpgradeStarted("web", new FormulaId("web", 1), new FormulaId("web", 2), ["web/0"], false, ["ratio (removed)"]),
            "wire.ServiceReplies.UpgradeStarted");
        Assert.Equal(["ratio (removed)"], started.DroppedOptions);
        Assert.Null(RoundTrip(new UpgradeStarted("web", new FormulaId("web", 1), new FormulaId("web", 2), ["web/0"], false), "wire.ServiceReplies.UpgradeStarted").DroppedOptions);
    }
}
