using Ensemble.Services;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.TestKit;

/// <summary>The faults the test kit injects do what it says, seen from what a user would see.</summary>
public sealed class FaultInjectionTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    [Fact]
    public async Task During_a_store_outage_a_deploy_is_refused_as_unavailable_and_works_once_it_ends()
    {
        TestFormulas.Write(Repository, "web", 1);
        Env.StoreOutage.Begin();
        try
        {
            var refused = Assert.IsType<CommandRejected>(await Env.DeployAsync("web", "web", Repository, 1));
            Assert.Equal(RejectionKind.Unavailable, refused.Kind);
            Assert.Contains("coordination store", refused.Reason);
        }
        finally
        {
            Env.StoreOutage.End();
        }
        Assert.Empty(await Env.Topology.ListServicesAsync());
        // As an operator would: try again until the controller has the store back (it retries every second).
        await LocalEnvironment.WaitUntilAsync(async () =>
            await Env.DeployAsync("web", "web", Repository, 1) is ServiceDeployed, Deadline, "the deploy to be accepted");
        await WaitForUnitsAsync(["web/0"], u => u.State == UnitPhase.Running, "web/0 to run");
    }

    [Fact]
    public async Task Hook_faults_fail_the_chosen_hook_once_without_running_it()
    {
        var faults = new HookFaults().FailNext("install", exitCode: 7);
        await using var env = await LocalEnvironment.StartAsync(new LocalEnvironmentOptions { Directory = Path.Combine(Root, "second"), HookFaults = faults });
        TestFormulas.Write(Repository, "db", 1);
        await env.DeployAsync("db", "db", Repository, 1);

        await LocalEnvironment.WaitUntilAsync(async () => (await env.Topology.GetUnitAsync("db/0"))?.State == UnitPhase.InstallError, Deadline, "install_error");
        Assert.Contains("exited with code 7", (await env.Topology.GetUnitAsync("db/0"))!.Error);
        Assert.Equal(1, faults.Injected);
    }
}
