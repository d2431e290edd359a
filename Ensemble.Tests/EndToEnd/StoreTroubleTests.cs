using System.Diagnostics;
using System.Text.Json;
using Ensemble.Tests.Support;
using Ensemble.Tests.ZooKeeper;
using Ensemble.ZooKeeper;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// A real environment (an Ensemble.Agent process) whose topology lives in a ZooKeeper server of its own, so a
/// test can stop that server or write into it as another client would.
/// </summary>
public sealed class ZooKeeperEnvironmentProcess : IAsyncLifetime
{
    public const string Name = "zk";

    public ZooKeeperTestServer Server { get; } = new();
    public string Root { get; } = Directory.CreateTempSubdirectory("ensemble-e2e-zk-").FullName;
    public EnsembleCommand Ensemble => new(Path.Combine(Root, "home"));
    public string Repository => Path.Combine(Root, "repository");
    public string Control => TestFormulas.ControlDirectory(Repository);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Repository);
        var result = await Ensemble.RunAsync("bootstrap", "--local", "--name", Name, "--zookeeper", Server.ConnectionString);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    public async Task DisposeAsync()
    {
        Server.Start();
        var pid = Ensemble.NodePid(Name);
        await Ensemble.RunAsync("destroy-environment", Name);
        if (EnsembleCommand.IsRunning(pid)) Process.GetProcessById(pid).Kill(entireProcessTree: true);
        Server.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    public string UnitDataDirectory(string unit) =>
        Path.Combine(Ensemble.EnvironmentDirectory(Name), "data", "machines", "machine-0", "units", unit.Replace('/', '-'), "data");

    public string NodeLog => Path.Combine(Ensemble.EnvironmentDirectory(Name), "agent.log");
}

/// <summary>
/// What the CLI says when the environment's store is out of reach or holds records it did not write: one
/// sentence and a documented exit code, the readable rest shown; never an unhandled exception.
/// </summary>
public sealed class StoreTroubleTests(ZooKeeperEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<ZooKeeperEnvironmentProcess>
{
    private const string Env = ZooKeeperEnvironmentProcess.Name;

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.False(result.HasStackTrace, result.ToString());
        return result;
    }

    private static void OneSentence(CommandResult result)
    {
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, result.ToString());
        Assert.StartsWith("ensemble: ", lines[0]);
    }

    private async Task DeployAsync(string service, int units)
    {
        TestFormulas.Write(env.Repository, service, 1);
        var deployed = await Run("deploy", "-e", Env, "--repository", env.Repository, $"-n{units}", "--wait", service);
        Assert.True(deployed.ExitCode == 0, deployed.ToString());
    }

    /// <summary>Waits until the restarted server serves the environment again.</summary>
    private Task StatusAnswersAsync() => LocalEnvironment.WaitUntilAsync(async () =>
        (await env.Ensemble.RunAsync("status", "-e", Env)).ExitCode == 0, TimeSpan.FromSeconds(60), "status to answer again");

    [Fact]
    public async Task Status_with_the_store_stopped_says_so_in_one_sentence_and_exit_7()
    {
        await DeployAsync("ledger", 1);
        env.Server.Stop();
        try
        {
            var status = await Run("status", "-e", Env);
            Assert.Equal(7, status.ExitCode);
            OneSentence(status);
            Assert.Contains("store", status.Stderr);
            Assert.Equal("", status.Stdout);
            var json = await Run("status", "-e", Env, "--format", "json");
            Assert.Equal(7, json.ExitCode);
            OneSentence(json);
        }
        finally
        {
            env.Server.Start();
        }
        await StatusAnswersAsync();
        Assert.Contains("status: cannot answer", File.ReadAllText(env.NodeLog));
    }

    [Fact]
    public async Task Upgrade_wait_follows_the_upgrade_through_a_store_outage_to_its_end()
    {
        await DeployAsync("web", 2);
        var units = new[] { "web/0", "web/1" };
        var hold = Path.Combine(env.Control, "hold-upgrade-formula");
        File.WriteAllText(hold, "");
        try
        {
            TestFormulas.Write(env.Repository, "web", 2);
            using var waiting = env.Ensemble.Start("upgrade-formula", "-e", Env, "--wait", "web");
            await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(units.All(u =>
                TestFormulas.HookTrace(env.UnitDataDirectory(u)).Contains("upgrade-formula 2 begin"))), TimeSpan.FromSeconds(60), "both units in their upgrade hook");

            env.Server.Stop();
            try
            {
                // The outage is real: status cannot read the store now.
                var status = await Run("status", "-e", Env);
                Assert.Equal(7, status.ExitCode);
                OneSentence(status);
                Assert.False(waiting.HasExited, "upgrade-formula --wait gave up during the outage");
            }
            finally
            {
                env.Server.Start();
            }
            File.Delete(hold);

            var result = await waiting.WaitAsync(TimeSpan.FromMinutes(2));
            output.WriteLine($"$ ensemble upgrade-formula --wait web\n{result}");
            Assert.False(result.HasStackTrace, result.ToString());
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("all 2 units of 'web' run local:web-2", result.Stdout);
            Assert.Contains("web/1            upgrading", result.Stdout);
            Assert.Contains("web/1            upgraded", result.Stdout);
        }
        finally
        {
            File.Delete(hold);
        }
        await StatusAnswersAsync();
    }

    [Fact]
    public async Task Status_shows_the_readable_rest_and_names_the_records_another_client_wrote()
    {
        await DeployAsync("shop", 2);
        await using var intruder = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions(env.Server.ConnectionString, TimeSpan.FromSeconds(10)));
        string[] garbage = ["/ensemble/services/intruder", "/ensemble/services/shop/units/junk", "/ensemble/services/shop/units/7"];
        await intruder.CreateAsync(garbage[0], "not json at all"u8.ToArray(), Acl.OpenUnsafe, CreateMode.Persistent);
        await intruder.CreateAsync(garbage[1], "{}"u8.ToArray(), Acl.OpenUnsafe, CreateMode.Persistent);
        await intruder.CreateAsync(garbage[2], "{\"colour\": \"blue\"}"u8.ToArray(), Acl.OpenUnsafe, CreateMode.Persistent);
        try
        {
            var json = await Run("status", "-e", Env, "--format", "json");
            Assert.Equal(1, json.ExitCode);
            OneSentence(json);
            foreach (var path in garbage) Assert.Contains(path, json.Stderr);
            var document = JsonDocument.Parse(json.Stdout).RootElement;
            var shop = document.GetProperty("services").GetProperty("shop");
            Assert.Equal(["shop/0", "shop/1"], shop.GetProperty("units").EnumerateObject().Select(u => u.Name));
            Assert.All(shop.GetProperty("units").EnumerateObject(), u => Assert.Equal("running", u.Value.GetProperty("state").GetString()));
            Assert.False(document.GetProperty("services").TryGetProperty("intruder", out _));
            Assert.Equal(garbage.Order(StringComparer.Ordinal),
                document.GetProperty("unreadable").EnumerateArray().Select(r => r.GetProperty("path").GetString()!).Order(StringComparer.Ordinal));

            var table = await Run("status", "-e", Env);
            Assert.Equal(1, table.ExitCode);
            OneSentence(table);
            Assert.Contains("shop/1", table.Stdout);
            Assert.Contains("could not read", table.Stdout);
            foreach (var path in garbage) Assert.Contains(path, table.Stdout);

            // The other services' status is untouched by the intruder, and the controller says what it skipped.
            var filtered = await Run("status", "-e", Env, "shop/0", "--format", "json");
            Assert.True(filtered.ExitCode == 1, filtered.ToString());
            var log = File.ReadAllText(env.NodeLog);
            foreach (var path in garbage) Assert.Contains($"status: skipped {path}", log);
        }
        finally
        {
            foreach (var path in garbage) await intruder.DeleteAsync(path);
        }
        Assert.Equal(0, (await Run("status", "-e", Env)).ExitCode);
    }
}
