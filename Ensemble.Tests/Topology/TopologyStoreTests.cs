using System.Text;
using Ensemble.Coordination;
using Ensemble.Tests.Units;
using Ensemble.Topology;
using Xunit;

namespace Ensemble.Tests.Topology;

public sealed class TopologyStoreTests : IAsyncLifetime
{
    private const string Root = "/tenants/blue";

    private readonly ScratchDirectory scratch = new("ensemble-topology");
    private EmbeddedCoordinationServer server = null!;
    private ICoordinationStore session = null!;
    private TopologyStore topology = null!;

    public async Task InitializeAsync()
    {
        server = EmbeddedCoordinationServer.Open(scratch.Combine("store"));
        session = server.Connect();
        topology = new TopologyStore(session, Root);
        await topology.EnsureLayoutAsync();
    }

    public async Task DisposeAsync()
    {
        await session.DisposeAsync();
        server.Dispose();
        scratch.Dispose();
    }

    private static readonly ServiceRecord WordPress = new("wordpress", "local:wordpress-1", new string('1', 64), "/repo");

    private async Task<IReadOnlyList<string>> CreateWordPressAsync(int units)
    {
        await topology.CreateServiceAsync(WordPress);
        var names = new List<string>();
        for (var n = 0; n < units; n++)
        {
            var name = UnitNames.Of("wordpress", n);
            await topology.AddUnitAsync(new UnitRecord(name, "local:wordpress-1", UnitPhase.Running, $"machine-{n}"));
            names.Add(name);
        }
        return names;
    }

    private async Task<string> RawAsync(string path) => Encoding.UTF8.GetString((await session.GetDataAsync(path)).Data);

    [Fact]
    public void Paths_are_laid_out_under_the_custom_root()
    {
        Assert.Equal(Root, topology.Root);
        Assert.Equal("/tenants/blue/services", topology.ServicesPath);
        Assert.Equal("/tenants/blue/agents", topology.AgentsPath);
        Assert.Equal("/tenants/blue/formulas", topology.FormulasPath);
        Assert.Equal("/tenants/blue/services/wordpress", topology.ServicePath("wordpress"));
        Assert.Equal("/tenants/blue/services/wordpress/units", topology.UnitsPath("wordpress"));
        Assert.Equal("/tenants/blue/services/wordpress/units/12", topology.UnitPath("wordpress/12"));
        Assert.Equal("/tenants/blue/services/wordpress/units/12/upgrade", topology.UpgradeFlagPath("wordpress/12"));
        Assert.Equal("/tenants/blue/formulas/local_wordpress-3", topology.FormulaPath("local:wordpress-3"));
        Assert.Equal("/tenants/blue/agents/machine-0", topology.AgentPath("machine-0"));
    }

    [Fact]
    public void The_default_root_is_ensemble()
    {
        var defaults = new TopologyStore(session);
        Assert.Equal("/ensemble", defaults.Root);
        Assert.Equal("/ensemble/services/mysql/units/0", defaults.UnitPath("mysql/0"));
    }

    [Fact]
    public async Task EnsureLayout_creates_every_level_of_the_root_and_is_idempotent()
    {
        Assert.Equal(["tenants"], (await session.GetChildrenAsync("/")).Children.Where(c => c != "zookeeper"));
        Assert.Equal(["blue"], (await session.GetChildrenAsync("/tenants")).Children);
        Assert.Equal(["agents", "formulas", "machines", "relations", "services"], (await session.GetChildrenAsync(Root)).Children);

        var writes = server.WriteCount;
        await topology.EnsureLayoutAsync();
        await new TopologyStore(server.Connect(), Root).EnsureLayoutAsync();
        Assert.Equal(writes, server.WriteCount);
    }

    [Fact]
    public async Task A_service_and_its_units_are_stored_and_listed_in_unit_number_order()
    {
        await topology.CreateServiceAsync(WordPress);
        foreach (var n in new[] { 10, 2, 0, 1 })
            await topology.AddUnitAsync(new UnitRecord(UnitNames.Of("wordpress", n), "local:wordpress-1", UnitPhase.Pending, "machine-0"));

        Assert.Equal(["wordpress"], await topology.ListServicesAsync());
        Assert.Equal(WordPress, await topology.GetServiceAsync("wordpress"));
        var units = await topology.ListUnitsAsync("wordpress");
        Assert.Equal(["wordpress/0", "wordpress/1", "wordpress/2", "wordpress/10"], units.Select(u => u.Name));
        Assert.All(units, u => Assert.Equal("wordpress", u.Service));
        Assert.Equal(10, units[^1].Number);
        Assert.Equal(units[^1], await topology.GetUnitAsync("wordpress/10"));
        Assert.NotNull(await session.ExistsAsync("/tenants/blue/services/wordpress/units/10"));
        Assert.Contains("\"machine\":\"machine-0\"", await RawAsync("/tenants/blue/services/wordpress/units/10"));
    }

    [Fact]
    public async Task Creating_a_service_twice_fails_and_changes_nothing()
    {
        await CreateWordPressAsync(1);
        await Assert.ThrowsAsync<NodeExistsException>(() => topology.CreateServiceAsync(WordPress with { Repository = "/other" }));
        Assert.Equal(WordPress, await topology.GetServiceAsync("wordpress"));
        Assert.Single(await topology.ListUnitsAsync("wordpress"));
    }

    [Fact]
    public async Task Missing_records_read_as_null()
    {
        Assert.Null(await topology.GetServiceAsync("nothing"));
        Assert.Null(await topology.GetUnitAsync("nothing/0"));
        Assert.Null(await topology.GetUpgradeFlagAsync("nothing/0"));
        Assert.Null(await topology.GetAgentAsync("nowhere"));
        Assert.Null(await topology.GetFormulaAsync("local:nothing-1"));
    }

    [Fact]
    public async Task SetUnitState_changes_state_and_error_and_skips_a_no_op_write()
    {
        var unit = (await CreateWordPressAsync(1))[0];
        await topology.SetUnitStateAsync(unit, UnitPhase.UpgradeError, "hook exited with code 3");
        Assert.Equal(new UnitRecord(unit, "local:wordpress-1", UnitPhase.UpgradeError, "machine-0", "hook exited with code 3"), await topology.GetUnitAsync(unit));

        var writes = server.WriteCount;
        await topology.SetUnitStateAsync(unit, UnitPhase.UpgradeError, "hook exited with code 3");
        Assert.Equal(writes, server.WriteCount);
    }

    [Fact]
    public async Task FlagUpgrade_is_idempotent_and_takes_the_latest_target()
    {
        var unit = (await CreateWordPressAsync(1))[0];
        var flag = new UpgradeFlag("local:wordpress-2", new string('2', 64));

        await topology.FlagUpgradeAsync(unit, flag);
        await topology.FlagUpgradeAsync(unit, flag);

        Assert.Equal(flag, await topology.GetUpgradeFlagAsync(unit));
        Assert.Equal(["upgrade"], (await session.GetChildrenAsync(topology.UnitPath(unit))).Children);

        var newer = new UpgradeFlag("local:wordpress-3", new string('3', 64));
        await topology.FlagUpgradeAsync(unit, newer);
        Assert.Equal(newer, await topology.GetUpgradeFlagAsync(unit));
    }

    [Fact]
    public async Task CompleteUpgrade_clears_the_flag_and_sets_the_formula_in_one_write()
    {
        var unit = (await CreateWordPressAsync(2))[1];
        await topology.SetUnitStateAsync(unit, UnitPhase.UpgradingFormula, null);
        await topology.FlagUpgradeAsync(unit, new UpgradeFlag("local:wordpress-2", new string('2', 64)));

        var before = server.WriteCount;
        await topology.CompleteUpgradeAsync(unit, "local:wordpress-2");

        Assert.Equal(1, server.WriteCount - before);
        Assert.Null(await topology.GetUpgradeFlagAsync(unit));
        Assert.Equal(new UnitRecord(unit, "local:wordpress-2", UnitPhase.Running, "machine-1"), await topology.GetUnitAsync(unit));
        // The other unit is untouched.
        Assert.Equal("local:wordpress-1", (await topology.GetUnitAsync("wordpress/0"))!.Formula);
    }

    [Fact]
    public async Task CompleteUpgrade_clears_an_error_left_by_a_failed_step()
    {
        var unit = (await CreateWordPressAsync(1))[0];
        await topology.SetUnitStateAsync(unit, UnitPhase.UpgradeError, "boom");
        await topology.FlagUpgradeAsync(unit, new UpgradeFlag("local:wordpress-2", new string('2', 64)));

        await topology.CompleteUpgradeAsync(unit, "local:wordpress-2");

        var record = await topology.GetUnitAsync(unit);
        Assert.Equal(UnitPhase.Running, record!.State);
        Assert.Null(record.Error);
    }

    [Fact]
    public async Task CompleteUpgrade_repeated_after_a_crash_is_idempotent()
    {
        var unit = (await CreateWordPressAsync(1))[0];
        await topology.FlagUpgradeAsync(unit, new UpgradeFlag("local:wordpress-2", new string('2', 64)));
        await topology.CompleteUpgradeAsync(unit, "local:wordpress-2");
        var end = await topology.GetUnitAsync(unit);

        var before = server.WriteCount;
        await topology.CompleteUpgradeAsync(unit, "local:wordpress-2");

        Assert.InRange(server.WriteCount - before, 0, 1);
        Assert.Equal(end, await topology.GetUnitAsync(unit));
        Assert.Null(await topology.GetUpgradeFlagAsync(unit));
    }

    [Fact]
    public async Task CompleteUpgrade_of_a_missing_unit_throws()
    {
        await CreateWordPressAsync(1);
        await Assert.ThrowsAsync<NoNodeException>(() => topology.CompleteUpgradeAsync("wordpress/9", "local:wordpress-2"));
    }

    [Fact]
    public async Task ClearUpgradeFlag_keeps_the_formula_and_tolerates_a_missing_flag()
    {
        var unit = (await CreateWordPressAsync(1))[0];
        await topology.FlagUpgradeAsync(unit, new UpgradeFlag("local:wordpress-2", new string('2', 64)));

        await topology.ClearUpgradeFlagAsync(unit);
        await topology.ClearUpgradeFlagAsync(unit);

        Assert.Null(await topology.GetUpgradeFlagAsync(unit));
        Assert.Equal("local:wordpress-1", (await topology.GetUnitAsync(unit))!.Formula);
    }

    [Fact]
    public async Task Removing_units_and_services_takes_their_flags_along()
    {
        var units = await CreateWordPressAsync(3);
        await topology.FlagUpgradeAsync(units[0], new UpgradeFlag("local:wordpress-2", new string('2', 64)));
        await topology.FlagUpgradeAsync(units[2], new UpgradeFlag("local:wordpress-2", new string('2', 64)));

        await topology.RemoveUnitAsync(units[0]);
        Assert.Equal(["wordpress/1", "wordpress/2"], (await topology.ListUnitsAsync("wordpress")).Select(u => u.Name));

        await topology.DeleteServiceAsync("wordpress");
        Assert.Empty(await topology.ListServicesAsync());
        Assert.Null(await session.ExistsAsync(topology.ServicePath("wordpress")));
    }

    [Fact]
    public async Task Formulas_are_stored_by_id_and_overwritten()
    {
        var first = new FormulaRecord("local:wordpress-2", new string('2', 64), new string('2', 64));
        await topology.PutFormulaAsync(first);
        await topology.PutFormulaAsync(first with { StorageKey = new string('f', 64) });

        Assert.Equal(first with { StorageKey = new string('f', 64) }, await topology.GetFormulaAsync("local:wordpress-2"));
        Assert.Equal(["local_wordpress-2"], (await session.GetChildrenAsync(topology.FormulasPath)).Children);
    }

    [Fact]
    public async Task Agent_presence_is_seen_from_other_sessions_and_vanishes_with_its_session()
    {
        var agentSession = server.Connect();
        var agentView = new TopologyStore(agentSession, Root);
        var presence = new AgentPresence("machine-0", "akka.tcp://ensemble@host:4053/user/machine-0");

        await agentView.RegisterAgentAsync(presence);

        Assert.Equal(presence, await topology.GetAgentAsync("machine-0"));
        Assert.Equal([presence], await topology.ListAgentsAsync());
        var node = await session.ExistsAsync(topology.AgentPath("machine-0"));
        Assert.Equal(agentSession.SessionId, node!.EphemeralOwner);

        await agentSession.DisposeAsync();

        var gone = await ScratchDirectory.EventuallyAsync(
            () => session.ExistsAsync(topology.AgentPath("machine-0")).GetAwaiter().GetResult() is null, TimeSpan.FromSeconds(10));
        Assert.True(gone, "the agent node outlived its session");
        Assert.Null(await topology.GetAgentAsync("machine-0"));
        Assert.Empty(await topology.ListAgentsAsync());
    }

    [Fact]
    public async Task Registering_an_agent_again_replaces_its_presence()
    {
        await topology.RegisterAgentAsync(new AgentPresence("machine-0", "old-address"));
        await topology.RegisterAgentAsync(new AgentPresence("machine-0", "new-address"));

        Assert.Equal("new-address", (await topology.GetAgentAsync("machine-0"))!.Address);

        await topology.UnregisterAgentAsync("machine-0");
        await topology.UnregisterAgentAsync("machine-0");
        Assert.Null(await topology.GetAgentAsync("machine-0"));
    }

    [Fact]
    public async Task A_restarted_agent_takes_over_the_presence_of_its_stale_session()
    {
        var stale = server.Connect();
        await new TopologyStore(stale, Root).RegisterAgentAsync(new AgentPresence("machine-0", "stale"));
        var fresh = server.Connect();

        await new TopologyStore(fresh, Root).RegisterAgentAsync(new AgentPresence("machine-0", "fresh"));

        Assert.Equal("fresh", (await topology.GetAgentAsync("machine-0"))!.Address);
        Assert.Equal(fresh.SessionId, (await session.ExistsAsync(topology.AgentPath("machine-0")))!.EphemeralOwner);
        // The stale session closing later must not take the fresh presence with it.
        await stale.DisposeAsync();
        Assert.Equal("fresh", (await topology.GetAgentAsync("machine-0"))!.Address);
        await fresh.DisposeAsync();
    }
}

public sealed class UnitNamesTests
{
    [Theory]
    [InlineData("wordpress/0", true)]
    [InlineData("my-sql2/17", true)]
    [InlineData("wordpress", false)]
    [InlineData("/0", false)]
    [InlineData("wordpress/", false)]
    [InlineData("wordpress/-1", false)]
    [InlineData("wordpress/+1", false)]
    [InlineData("wordpress/ 1", false)]
    [InlineData("wordpress/x", false)]
    [InlineData("wordpress/0/1", false)]
    [InlineData("WordPress/0", false)]
    [InlineData("2fast/0", false)]
    [InlineData("word_press/0", false)]
    [InlineData("../0", false)]
    [InlineData("wordpress/99999999999", false)]
    public void IsValid(string unit, bool valid) => Assert.Equal(valid, UnitNames.IsValid(unit));

    [Theory]
    [InlineData("a", true)]
    [InlineData("mysql-server", true)]
    [InlineData("", false)]
    [InlineData("-mysql", false)]
    [InlineData("mysql.server", false)]
    [InlineData("mysql/0", false)]
    public void IsValidServiceName(string name, bool valid) => Assert.Equal(valid, UnitNames.IsValidServiceName(name));

    [Fact]
    public void Service_names_are_at_most_64_characters()
    {
        Assert.True(UnitNames.IsValidServiceName(new string('a', 64)));
        Assert.False(UnitNames.IsValidServiceName(new string('a', 65)));
    }

    [Fact]
    public void A_unit_name_splits_into_service_and_number()
    {
        Assert.Equal("wordpress/12", UnitNames.Of("wordpress", 12));
        Assert.Equal("wordpress", UnitNames.ServiceOf("wordpress/12"));
        Assert.Equal(12, UnitNames.NumberOf("wordpress/12"));
        Assert.Throws<FormatException>(() => UnitNames.ServiceOf("wordpress"));
        Assert.Throws<FormatException>(() => UnitNames.NumberOf("/3"));
    }

    [Theory]
    [InlineData("wordpress/0", "wordpress-0")]
    [InlineData("my-sql/12", "my-sql-12")]
    public void DirectoryName_is_file_system_safe(string unit, string directory)
    {
        Assert.Equal(directory, UnitNames.DirectoryName(unit));
        Assert.DoesNotContain('/', UnitNames.DirectoryName(unit));
    }
}
