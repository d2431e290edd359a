using Akka.Actor;
using Ensemble.Services;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Upgrades;

/// <summary>`ensemble log` through the controller: the log comes from the unit's machine, and a machine that is down is said so.</summary>
public sealed class UnitLogTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { Machines = 2 };

    [Fact]
    public async Task The_log_is_read_from_the_units_machine_and_a_down_machine_is_an_error_sentence()
    {
        TestFormulas.Write(Repository, "web", 1);
        var units = await DeployAsync("web", 2);
        var onM1 = (await Env.Topology.GetUnitAsync(units[0]))!.Machine == "m1" ? units[0] : units[1];

        var log = Assert.IsType<Ensemble.Units.UnitReplies.UnitLog>(await Env.Services.Ask<object>(new EnvironmentRequests.ReadLog(onM1, Tail: 3), Deadline));
        Assert.Contains("[start] hook start exited with code 0", log.Text);
        Assert.Equal(3, log.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        await Env.LoseMachineAsync("m1");
        var refused = Assert.IsType<CommandRejected>(await Env.Services.Ask<object>(new EnvironmentRequests.ReadLog(onM1), Deadline));
        Assert.Equal(RejectionKind.Unavailable, refused.Kind);
        Assert.Contains($"the log of {onM1} is on machine m1, whose agent is down", refused.Reason);

        var missing = Assert.IsType<CommandRejected>(await Env.Services.Ask<object>(new EnvironmentRequests.ReadLog("web/9"), Deadline));
        Assert.Equal(RejectionKind.NotFound, missing.Kind);
    }
}
