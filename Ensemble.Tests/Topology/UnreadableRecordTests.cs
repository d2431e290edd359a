using System.Text;
using Ensemble.Coordination;
using Ensemble.Tests.Units;
using Ensemble.Topology;
using Xunit;

namespace Ensemble.Tests.Topology;

/// <summary>Nodes in the topology that are not what their place calls for: readers name them and go on with the rest.</summary>
public sealed class UnreadableRecordTests : IAsyncLifetime
{
    private readonly ScratchDirectory _scratch = new("ensemble-unreadable");
    private EmbeddedCoordinationServer _server = null!;
    private ICoordinationStore _session = null!;
    private TopologyStore _topology = null!;

    public async Task InitializeAsync()
    {
        _server = EmbeddedCoordinationServer.Open(_scratch.Combine("store"));
        _session = _server.Connect();
        _topology = new TopologyStore(_session);
        await _topology.EnsureLayoutAsync();
        await _topology.CreateServiceAsync(new ServiceRecord("shop", "local:shop-1", new string('1', 64), "/repo"));
        for (var n = 0; n < 2; n++)
            await _topology.AddUnitAsync(new UnitRecord(UnitNames.Of("shop", n), "local:shop-1", UnitPhase.Running, "machine-0"));
    }

    public async Task DisposeAsync()
    {
        await _session.DisposeAsync();
        _server.Dispose();
        _scratch.Dispose();
    }

    private Task WriteAsync(string path, string data) => _session.CreateAsync(path, Encoding.UTF8.GetBytes(data));

    [Fact]
    public async Task Listing_units_skips_and_names_nodes_that_are_not_unit_records()
    {
        await WriteAsync("/ensemble/services/shop/units/junk", "{}");
        await WriteAsync("/ensemble/services/shop/units/5", "not json");
        await WriteAsync("/ensemble/services/shop/units/6", "{\"colour\": \"blue\"}");
        await _topology.AddUnitAsync(new UnitRecord("shop/7", "local:shop-1", UnitPhase.Running, "machine-0"));
        await _session.SetDataAsync("/ensemble/services/shop/units/7", Encoding.UTF8.GetBytes(
            "{\"name\": \"other/0\", \"formula\": \"local:shop-1\", \"state\": \"running\", \"machine\": \"machine-0\"}"));

        var unreadable = new List<UnreadableRecord>();
        var units = await _topology.ListUnitsAsync("shop", unreadable);

        Assert.Equal(["shop/0", "shop/1"], units.Select(u => u.Name));
        Assert.Equal(
            ["/ensemble/services/shop/units/5", "/ensemble/services/shop/units/6", "/ensemble/services/shop/units/7", "/ensemble/services/shop/units/junk"],
            unreadable.Select(r => r.Path).Order(StringComparer.Ordinal));
        Assert.Contains("not a unit record", unreadable.Single(r => r.Path.EndsWith("/5", StringComparison.Ordinal)).Reason);
        Assert.Contains("it has no 'name'", unreadable.Single(r => r.Path.EndsWith("/6", StringComparison.Ordinal)).Reason);
        Assert.Contains("names unit 'other/0'", unreadable.Single(r => r.Path.EndsWith("/7", StringComparison.Ordinal)).Reason);
        // Without a collector the readable units come back all the same.
        Assert.Equal(["shop/0", "shop/1"], (await _topology.ListUnitsAsync("shop")).Select(u => u.Name));
    }

    [Fact]
    public async Task Reading_a_record_that_is_not_one_names_its_path()
    {
        await WriteAsync("/ensemble/services/intruder", "<xml/>");
        var error = await Assert.ThrowsAsync<UnreadableRecordException>(() => _topology.GetServiceAsync("intruder"));
        Assert.Equal("/ensemble/services/intruder", error.Path);
        Assert.StartsWith("not a service record", error.Reason);

        await WriteAsync("/ensemble/services/shop/units/0/upgrade", "{\"formula\": 3}");
        var flag = await Assert.ThrowsAsync<UnreadableRecordException>(() => _topology.GetUpgradeFlagAsync("shop/0"));
        Assert.Equal("/ensemble/services/shop/units/0/upgrade", flag.Path);

        // A service node without its units node lists no units and says so.
        var unreadable = new List<UnreadableRecord>();
        Assert.Empty(await _topology.ListUnitsAsync("intruder", unreadable));
        Assert.Equal("/ensemble/services/intruder/units", Assert.Single(unreadable).Path);
    }

    [Fact]
    public async Task Agents_that_cannot_be_read_are_not_offered_for_placement()
    {
        await _topology.RegisterAgentAsync(new AgentPresence("machine-0", "akka.tcp://ensemble@127.0.0.1:1/user/machine-machine-0"));
        await WriteAsync("/ensemble/agents/intruder", "garbage");
        Assert.Equal(["machine-0"], (await _topology.ListAgentsAsync()).Select(a => a.Machine));
    }
}
