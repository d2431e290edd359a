using Akka.Actor;
using Ensemble.Services;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.Upgrades;

/// <summary>
/// Units whose machine is down. remove-unit and destroy-service: said so, shown as dying, and carried out
/// (stop hook, files) by the machine's agent when it is back, never "removed" while the files remain. An upgrade: status
/// says which machine the unit waits for, and the upgrade finishes when it is back.
/// </summary>
public sealed class DownMachineTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    private async Task<EnvironmentReplies.Status> StatusAsync() =>
        Assert.IsType<EnvironmentReplies.Status>(await Env.Services.Ask<object>(new EnvironmentRequests.GetStatus(), Deadline));

    [Fact]
    public async Task Units_on_a_down_machine_are_removed_by_its_agent_when_it_is_back_and_the_service_goes_with_the_last()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 4);
        var onM1 = new List<string>();
        foreach (var unit in units)
            if ((await Env.Topology.GetUnitAsync(unit))!.Machine == "m1") onM1.Add(unit);
        Assert.Equal(2, onM1.Count);
        var paths = new Dictionary<string, UnitPaths>();
        foreach (var unit in units) paths[unit] = await Env.UnitPathsAsync(unit);

        await Env.LoseMachineAsync("m1");

        // remove-unit: said so, the files stay, status shows it dying, the service no longer counts it.
        var removed = Assert.IsType<UnitDestroyed>(await Env.AskAsync<object>(new DestroyUnit("web", onM1[0])));
        Assert.Equal("m1", removed.WaitingForMachine);
        Assert.True(Directory.Exists(paths[onM1[0]].Root));
        var status = await StatusAsync();
        Assert.True(status.Services["web"].Units[onM1[0]].Dying);
        Assert.False(status.Services["web"].Units[onM1[1]].Dying);

        // destroy-service: the units on the live machine go now, the other one waits; the name is not free yet.
        var destroyed = Assert.IsType<ServiceDestroyed>(await Env.AskAsync<object>(new DestroyService("web")));
        Assert.Equal([onM1[1]], destroyed.Waiting);
        foreach (var unit in units.Except(onM1)) Assert.False(Directory.Exists(paths[unit].Root));
        status = await StatusAsync();
        Assert.True(status.Services["web"].Dying);
        Assert.Equal(onM1.Order(), status.Services["web"].Units.Keys.Order());
        var again = Assert.IsType<CommandRejected>(await Env.DeployAsync("web", "web", Repository, 1));
        Assert.Equal(RejectionKind.Conflict, again.Kind);
        Assert.Contains("is still being destroyed", again.Reason);
        Assert.Contains($"{onM1[0]} (machine m1)", again.Reason);

        // The machine is back: its agent runs each unit's stop hook, removes its files, then the records.
        await Env.StartMachineAsync("m1");
        await LocalEnvironment.WaitUntilAsync(async () => await Env.Topology.GetServiceAsync("web") is null, Deadline, "the dying service to go");
        foreach (var unit in onM1)
        {
            Assert.False(Directory.Exists(paths[unit].Root));
            Assert.Contains($"{unit} stop 1 end", File.ReadAllLines(Path.Combine(TestFormulas.ControlDirectory(Repository), "shared.log")));
        }
        Assert.Empty((await StatusAsync()).Services);
        Assert.IsType<ServiceDeployed>(await Env.DeployAsync("web", "web", Repository, 1));
    }

    [Fact]
    public async Task An_upgrade_says_which_machine_a_unit_waits_for_and_finishes_when_it_is_back()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 2);
        var onM1 = units.Single(u => Env.Topology.GetUnitAsync(u).Result!.Machine == "m1");
        await Env.LoseMachineAsync("m1");

        TestFormulas.Write(Repository, "web", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("web"));
        await LocalEnvironment.WaitUntilAsync(async () => (await StatusAsync()).Services["web"].Units[onM1].Progress == "waiting for machine m1, whose agent is down",
            Deadline, "status to say the unit waits for its machine");
        await WaitForUnitsAsync(units.Where(u => u != onM1), u => u.Formula == "local:web-2", "the unit on the live machine upgraded");

        await Env.StartMachineAsync("m1");
        await WaitForUnitsAsync(units, u => u.Formula == "local:web-2" && u.State == UnitPhase.Running, "both units on revision 2");
        await WaitForUpgradeToEndAsync("web");
    }
}
