using Akka.Actor;
using Ensemble.Hosting;
using Ensemble.Services;
using Ensemble.Tests.Support;
using Ensemble.Units;
using Xunit;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.EndToEnd;

/// <summary>A normal stop of a node lets each unit finish the step it is in; the next start goes on from there.</summary>
public sealed class NodeShutdownTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-node-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private NodeOptions Options => new(Path.Combine(_root, "data"), "shutdown-test",
        new HashSet<string> { NodeOptions.ControllerRole, NodeOptions.AgentRole }, "machine-0");

    private static Task<object> AskAsync(EnsembleNode node, object message) =>
        node.System.ActorSelection(EnsembleNode.ServicesPath).Ask<object>(message, TimeSpan.FromSeconds(30));

    [Fact]
    public async Task Stopping_a_node_mid_upgrade_finishes_the_running_hook_and_the_restarted_node_completes_the_upgrade()
    {
        var repository = Path.Combine(_root, "repository");
        var control = TestFormulas.ControlDirectory(repository);
        TestFormulas.Write(repository, "app", 1);
        var node = await EnsembleNode.StartAsync(Options);
        var unit = "app/0";
        var paths = UnitPaths.For(UnitPaths.UnitsDirectory(Options.MachineDirectory), unit);

        Assert.IsType<ServiceDeployed>(await new ServiceClient(new NodeChannel(node.System)).DeployAsync("app", "app", repository, 1));
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(paths.DataDirectory).Contains("start 1 end")),
            TimeSpan.FromSeconds(60), "the unit to start");
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");
        TestFormulas.Write(repository, "app", 2);
        Assert.IsType<UpgradeStarted>(await new ServiceClient(new NodeChannel(node.System)).UpgradeAsync("app"));
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(paths.DataDirectory).Contains("upgrade-formula 2 begin")),
            TimeSpan.FromSeconds(60), "the upgrade hook to begin");

        var stopping = node.DisposeAsync().AsTask();
        Assert.False(stopping.IsCompleted);
        File.Delete(Path.Combine(control, "hold-upgrade-formula"));
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));

        // The hook ran to its end and the next step is persisted, not begun.
        Assert.Equal("upgrade-formula 2 end", TestFormulas.HookTrace(paths.DataDirectory)[^1]);
        Assert.Equal(UnitPhase.Starting, UnitStateFile.Load(paths)!.Phase);

        await using var restarted = await EnsembleNode.StartAsync(Options);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(paths.DataDirectory)[^1] == "start 2 end"),
            TimeSpan.FromSeconds(60), "the restarted node to start the unit on revision 2");
        var trace = TestFormulas.HookTrace(paths.DataDirectory);
        Assert.Equal(1, trace.Count(l => l == "upgrade-formula 2 begin"));
        await LocalEnvironment.WaitUntilAsync(async () =>
            await AskAsync(restarted, new GetUpgradeStatus("app")) is UpgradeStatus { Running: false },
            TimeSpan.FromSeconds(60), "the upgrade to end");
    }
}
