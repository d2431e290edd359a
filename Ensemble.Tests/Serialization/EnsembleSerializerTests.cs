using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Ensemble.Formulas;
using Ensemble.Hosting;
using Ensemble.Serialization;
using Ensemble.Services;
using Xunit;

namespace Ensemble.Tests.Serialization;

public sealed class EnsembleSerializerTests : IAsyncLifetime
{
    private static readonly FormulaRef Rev1 = new(new FormulaId("wordpress", 1), new string('a', 64));
    private static readonly FormulaRef Rev2 = new(new FormulaId("wordpress", 2), new string('b', 64));

    private ActorSystem system = null!;

    public Task InitializeAsync()
    {
        system = ActorSystem.Create("serialization-test", EnsembleConfig.Defaults);
        return Task.CompletedTask;
    }

    public Task DisposeAsync() => system.Terminate();

    public static TheoryData<string, IPersistedEvent> Events() => new()
    {
        { "svc.deployed", new ServiceEvents.ServiceCreated(Rev1, "/srv/repository") },
        { "svc.unit-placed", new ServiceEvents.UnitPlaced("wordpress/3", "machine-1") },
        { "svc.unit-destroyed", new ServiceEvents.UnitDeleted("wordpress/3") },
        { "svc.upgrade-began", new ServiceEvents.UpgradeBegan("run-7", Rev1, Rev2, "/srv/repository", ["wordpress/0", "wordpress/10", "wordpress/2"], 2) },
        { "svc.upgrade-began", new ServiceEvents.UpgradeBegan("run-8", Rev1, Rev2, "/srv/repository", [], 1) },
        { "svc.unit-upgrade-launched", new ServiceEvents.UnitUpgradeLaunched("run-7", "wordpress/0") },
        { "svc.unit-upgrade-succeeded", new ServiceEvents.UnitUpgradeSucceeded("run-7", "wordpress/0") },
        { "svc.unit-upgrade-failed", new ServiceEvents.UnitUpgradeFailed("run-7", "wordpress/2", "upgrade_error: \"quoted\" cause\nsecond line ✓") },
        { "svc.upgrade-ended", new ServiceEvents.UpgradeEnded("run-7") },
        { "svc.removed", new ServiceEvents.ServiceRemoved() },
        // A snapshot, not an event, but through the same table (JournalHygieneTests round-trips one mid-upgrade).
        { "svc.snapshot", new ServiceSnapshot(ServiceState.Empty("wordpress") with { Formula = Rev1, Repository = "/srv/repository", NextUnitNumber = 3 }) },
    };

    private Serializer SerializerFor(object evt) => system.Serialization.FindSerializerFor(evt);

    [Theory]
    [MemberData(nameof(Events))]
    public void Every_journaled_event_round_trips_under_its_fixed_manifest(string manifest, IPersistedEvent evt)
    {
        var serializer = Assert.IsType<EnsembleSerializer>(SerializerFor(evt));
        Assert.Equal(EnsembleSerializer.SerializerId, serializer.Identifier);

        Assert.Equal(manifest, serializer.Manifest(evt));
        var bytes = serializer.ToBinary(evt);
        var copy = serializer.FromBinary(bytes, manifest);

        AssertSameEvent(evt, copy);
    }

    [Theory]
    [MemberData(nameof(Events))]
    public void Every_journaled_event_round_trips_through_akka_serialization(string manifest, IPersistedEvent evt)
    {
        var serializer = SerializerFor(evt);
        var bytes = serializer.ToBinary(evt);

        var copy = system.Serialization.Deserialize(bytes, serializer.Identifier, Serialization_Manifest(serializer, evt));

        Assert.Equal(manifest, Serialization_Manifest(serializer, evt));
        AssertSameEvent(evt, copy);
    }

    private static string Serialization_Manifest(Serializer serializer, object evt) =>
        Akka.Serialization.Serialization.ManifestFor(serializer, evt);

    private static void AssertSameEvent(object expected, object actual)
    {
        Assert.IsType(expected.GetType(), actual);
        if (expected is ServiceEvents.UpgradeBegan began)
        {
            var copy = (ServiceEvents.UpgradeBegan)actual;
            Assert.Equal(began.Units, copy.Units);
            Assert.Equal(began with { Units = [] }, copy with { Units = [] });
            Assert.Equal(began.To.Id, copy.To.Id);
            return;
        }
        if (expected is ServiceSnapshot snapshot)
        {
            var state = ((ServiceSnapshot)actual).State;
            Assert.Equal(snapshot.State.Units, state.Units);
            Assert.Equal(snapshot.State with { Units = state.Units }, state);
            return;
        }
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Every_persisted_event_type_has_a_manifest()
    {
        var serializer = new EnsembleSerializer((ExtendedActorSystem)system);
        var types = typeof(IPersistedEvent).Assembly.GetTypes()
            .Where(t => typeof(IPersistedEvent).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .ToList();
        Assert.NotEmpty(types);

        var covered = Events().Select(row => row[1].GetType()).ToHashSet();
        Assert.All(types, t => Assert.Contains(t, covered));
        var manifests = Events().Select(row => (string)row[0]).Distinct().ToList();
        Assert.Equal(types.Count, manifests.Count);
    }

    [Fact]
    public void An_unknown_manifest_is_refused()
    {
        var serializer = SerializerFor(new ServiceEvents.UpgradeEnded("run-1"));
        var bytes = Encoding.UTF8.GetBytes("""{"runId":"run-1"}""");

        Assert.Throws<SerializationException>(() => ((SerializerWithStringManifest)serializer).FromBinary(bytes, "svc.no-such-event"));
        Assert.Throws<SerializationException>(() => ((SerializerWithStringManifest)serializer).FromBinary(bytes, ""));
    }

    [Theory]
    [InlineData("System.IO.FileInfo, System.IO")]
    [InlineData("System.IO.FileInfo, System.Private.CoreLib")]
    [InlineData("Ensemble.Services.ServiceEvents+UpgradeEnded, Ensemble.Actors")]
    [InlineData("SVC.UPGRADE-ENDED")]
    public void A_type_name_manifest_is_never_resolved(string manifest)
    {
        var serializer = (SerializerWithStringManifest)SerializerFor(new ServiceEvents.UpgradeEnded("run-1"));
        var bytes = Encoding.UTF8.GetBytes("""{"originalPath":"/etc/passwd","runId":"run-1"}""");

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, manifest));
        Assert.Contains("unknown manifest", refused.Message);
    }

    [Fact]
    public void An_object_outside_the_table_has_no_manifest()
    {
        var serializer = new EnsembleSerializer((ExtendedActorSystem)system);
        Assert.Throws<ArgumentException>(() => serializer.Manifest(new FileInfo("/etc/passwd")));
        Assert.Throws<ArgumentException>(() => serializer.Manifest(Ensemble.Units.UnitState.New("wordpress/0")));
    }

    [Fact]
    public void The_payload_is_plain_json_with_web_names()
    {
        var serializer = SerializerFor(new ServiceEvents.UnitPlaced("wordpress/3", "machine-1"));
        var json = Encoding.UTF8.GetString(serializer.ToBinary(new ServiceEvents.UnitPlaced("wordpress/3", "machine-1")));
        Assert.Equal("""{"unit":"wordpress/3","machine":"machine-1"}""", json);
    }
}

public sealed class WireMessageSerializationTests : Akka.TestKit.Xunit2.TestKit
{
    public WireMessageSerializationTests() : base(Ensemble.Hosting.EnsembleConfig.Defaults) { }

    public static TheoryData<object> WireMessages() => new()
    {
        new ServiceRequests.UpgradeFormula("web", new FormulaRef(new FormulaId("web", 1), new string('a', 64)),
            new FormulaRef(new FormulaId("web", 2), new string('b', 64)), "/repo", 2, true, ["web/0", "web/2"], 2, DryRun: true),
        new ServiceRequests.PrepareUpgrade("web", "/repo", 3, ["web/0"], 2),
        new ServiceReplies.UpgradePrepared("web", new FormulaRef(new FormulaId("web", 1), new string('a', 64)), "/repo", 50),
        new Ensemble.Formulas.Transfer.BundleRequests.BeginUpload(new FormulaId("web", 2), new string('b', 64), 1234),
        new Ensemble.Formulas.Transfer.BundleReplies.UploadRefused(ServiceReplies.RejectionKind.InvalidFormula, "(bundle): size: too big"),
        new ServiceReplies.CommandRejected("web", ServiceReplies.RejectionKind.NoNewerRevision, "no newer revision"),
        new ServiceReplies.UpgradeStarted("web", new Ensemble.Formulas.FormulaId("web", 1), new Ensemble.Formulas.FormulaId("web", 2), ["web/0"], true),
        new EnvironmentRequests.Ping(),
        new Ensemble.Units.UnitReplies.UnitResolved("web/0", UnitPhase.UpgradingFormula),
    };

    [Theory]
    [MemberData(nameof(WireMessages))]
    public void Wire_messages_go_through_our_serializer_and_round_trip(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<EnsembleSerializer>(serializer);
        var manifest = ((EnsembleSerializer)serializer).Manifest(message);
        Assert.StartsWith("wire.", manifest);
        var back = ((EnsembleSerializer)serializer).FromBinary(serializer.ToBinary(message), manifest);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(message, message.GetType()), System.Text.Json.JsonSerializer.Serialize(back, back.GetType()));
    }

    [Fact]
    public void A_chunk_travels_as_its_bytes_behind_a_small_header_not_as_base64()
    {
        var data = new byte[Ensemble.Formulas.Transfer.BundleTransfer.ChunkSize];
        new Random(7).NextBytes(data);
        var chunk = new Ensemble.Formulas.Transfer.BundleReplies.BundleChunk(new string('c', 64), 65536, 300_000, data);
        var serializer = (EnsembleSerializer)Sys.Serialization.FindSerializerFor(chunk);

        var bytes = serializer.ToBinary(chunk);
        var back = Assert.IsType<Ensemble.Formulas.Transfer.BundleReplies.BundleChunk>(serializer.FromBinary(bytes, serializer.Manifest(chunk)));

        Assert.Equal("wire.BundleReplies.BundleChunk", serializer.Manifest(chunk));
        Assert.True(bytes.Length < data.Length + 200, $"{bytes.Length} bytes on the wire for a chunk of {data.Length}");
        Assert.True(bytes.Length < 85_000, "a chunk on the wire stays off the large object heap");
        Assert.Equal((chunk.Sha256, chunk.Offset, chunk.Size), (back.Sha256, back.Offset, back.Size));
        Assert.Equal(data, back.Data);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary([0xFF, 0xFF, 0xFF, 0x7F, 1, 2], serializer.Manifest(chunk)));
    }

    [Fact]
    public void The_status_document_round_trips()
    {
        var status = new EnvironmentReplies.Status(new Dictionary<string, EnvironmentReplies.ServiceStatus>
        {
            ["web"] = new("local:web-2", new Dictionary<string, EnvironmentReplies.UnitStatus>
            {
                ["web/0"] = new("local:web-2", UnitPhase.UpgradeError, true, "machine-0", "hook 'upgrade-formula' exited with code 3", "upgrade_error"),
            }, false),
        });
        var serializer = (EnsembleSerializer)Sys.Serialization.FindSerializerFor(status);
        var back = (EnvironmentReplies.Status)serializer.FromBinary(serializer.ToBinary(status), serializer.Manifest(status));
        Assert.Equal(status.Services["web"].Units["web/0"], back.Services["web"].Units["web/0"]);
    }
}
