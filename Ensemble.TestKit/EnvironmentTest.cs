using Akka.TestKit.Xunit2;
using Ensemble.Services;
using Ensemble.Topology;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.TestKit;

/// <summary>A TestKit whose actor system hosts a <see cref="LocalEnvironment"/> in a fresh directory.</summary>
public abstract class EnvironmentTest : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    protected EnvironmentTest(ITestOutputHelper output) : this(LocalEnvironment.NewDirectory(), output) { }

    /// <summary>With <paramref name="config"/> over the environment's actor system configuration, given the environment's directory.</summary>
    protected EnvironmentTest(ITestOutputHelper output, Func<string, Akka.Configuration.Config> config) : this(LocalEnvironment.NewDirectory(), output, config) { }

    private EnvironmentTest(string directory, ITestOutputHelper output, Func<string, Akka.Configuration.Config>? config = null)
        : base(LocalEnvironment.JournalConfig(directory, config?.Invoke(directory)), "ensemble-test", output)
    {
        Root = directory;
        Repository = Path.Combine(directory, "repository");
        Directory.CreateDirectory(Repository);
    }

    protected string Root { get; }
    protected string Repository { get; }
    protected LocalEnvironment Env { get; private set; } = null!;

    /// <summary>Override to shape the environment (machines, faults, timeouts).</summary>
    protected virtual LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults;

    public async Task InitializeAsync()
    {
        var defaults = new LocalEnvironmentOptions
        {
            Directory = Root,
            Controller = ControllerSettings.Default with { AgentResendInterval = TimeSpan.FromMilliseconds(500) },
            Agent = AgentSettings.Default with
            {
                HookTimeout = TimeSpan.FromSeconds(20),
                DownloadRetry = new DownloadRetryPolicy(3, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100)),
            },
        };
        Env = await LocalEnvironment.StartAsync(Options(defaults), Sys);
    }

    public async Task DisposeAsync()
    {
        await Env.DisposeAsync();
        Shutdown();
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }

    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Deploys formula <paramref name="formula"/> from the test repository and waits until every unit runs.</summary>
    protected async Task<IReadOnlyList<string>> DeployAsync(string formula, int units, string? service = null)
    {
        var reply = await Env.DeployAsync(service ?? formula, formula, Repository, units);
        var deployed = Assert.IsType<ServiceReplies.ServiceDeployed>(reply);
        await WaitForUnitsAsync(deployed.Units, u => u.State == UnitPhase.Running, "units to run");
        return deployed.Units;
    }

    protected Task WaitForUnitsAsync(IEnumerable<string> units, Func<UnitRecord, bool> condition, string what, TimeSpan? deadline = null) =>
        LocalEnvironment.WaitUntilAsync(async () =>
        {
            try
            {
                foreach (var unit in units)
                    if (await Env.Topology.GetUnitAsync(unit) is not { } record || !condition(record)) return false;
                return true;
            }
            catch (Ensemble.Coordination.StoreException ex) when (ex.Code == Ensemble.Coordination.StoreErrorCode.ConnectionLoss)
            {
                return false; // the test's own store session is moving to another server; ask again
            }
        }, deadline ?? Deadline, what);

    /// <summary>Waits until the service's upgrade run has finished (the coordinator holds no run any more).</summary>
    protected Task WaitForUpgradeToEndAsync(string service, TimeSpan? deadline = null) =>
        LocalEnvironment.WaitUntilAsync(async () =>
            !(await Env.AskAsync<ServiceReplies.UpgradeStatus>(new ServiceRequests.GetUpgradeStatus(service))).Running,
            deadline ?? Deadline, $"the upgrade of {service} to end");

    protected async Task<string> DataDirAsync(string unit) => (await Env.UnitPathsAsync(unit)).DataDirectory;

    protected async Task<string> FormulaDirAsync(string unit) => (await Env.UnitPathsAsync(unit)).FormulaDirectory;
}
