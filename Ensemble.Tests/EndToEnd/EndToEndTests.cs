using System.Diagnostics;
using System.Text.Json;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>One real environment (an Ensemble.Agent process) shared by the tests of a class; destroyed at the end.</summary>
public sealed class LocalEnvironmentProcess : IAsyncLifetime
{
    public string Root { get; } = Directory.CreateTempSubdirectory("ensemble-e2e-").FullName;
    public EnsembleCommand Ensemble => new(Path.Combine(Root, "home"));
    public string Repository => Path.Combine(Root, "repository");
    public string Control => TestFormulas.ControlDirectory(Repository);
    public int Pid { get; private set; }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Repository);
        var result = await Ensemble.RunAsync("bootstrap", "--local", "--name", "e2e");
        Assert.True(result.ExitCode == 0, result.ToString());
        Pid = Ensemble.NodePid("e2e");
    }

    public async Task DisposeAsync()
    {
        await Ensemble.RunAsync("destroy-environment", "e2e");
        if (EnsembleCommand.IsRunning(Pid)) Process.GetProcessById(Pid).Kill(entireProcessTree: true);
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    public string UnitDataDirectory(string unit) =>
        global::Ensemble.Units.UnitPaths.On(Path.Combine(Root, "home", "environments", "e2e", "data"), "machine-0", unit).DataDirectory;
}

/// <summary>The whole loop from a terminal: real CLI processes against a real node process.</summary>
public sealed class EndToEndTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    private async Task<CommandResult> Ok(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == 0, $"ensemble {string.Join(' ', args)}: {result}");
        return result;
    }

    private async Task<CommandResult> Fails(int exitCode, params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode} from ensemble {string.Join(' ', args)}: {result}");
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("ensemble: ", lines[0]);
        return result;
    }

    private async Task<JsonElement> StatusAsync()
    {
        var result = await Ok("status", "--format", "json", "-e", "e2e");
        return JsonDocument.Parse(result.Stdout).RootElement;
    }

    [Fact]
    public async Task Deploy_then_upgrade_with_wait_keeps_data_and_reports_the_new_revision()
    {
        TestFormulas.Write(env.Repository, "shop", 1, extraFiles: new Dictionary<string, string> { ["old-only.txt"] = "old" });
        var deployed = await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "-n", "3", "shop");
        Assert.Contains("shop/0, shop/1, shop/2", deployed.Stdout);
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            var status = await StatusAsync();
            return status.GetProperty("services").GetProperty("shop").GetProperty("units").EnumerateObject()
                .All(u => u.Value.GetProperty("state").GetString() == "running");
        }, TimeSpan.FromSeconds(60), "the shop units to run");
        File.WriteAllText(Path.Combine(env.UnitDataDirectory("shop/1"), "orders.db"), "42 orders");

        TestFormulas.Write(env.Repository, "shop", 2);
        var upgraded = await Ok("upgrade-formula", "-e", "e2e", "--wait", "shop");
        Assert.Contains("all 3 units of 'shop' run local:shop-2", upgraded.Stdout);

        var json = await StatusAsync();
        var shop = json.GetProperty("services").GetProperty("shop");
        Assert.Equal("local:shop-2", shop.GetProperty("formula").GetString());
        foreach (var unit in shop.GetProperty("units").EnumerateObject())
        {
            Assert.Equal("local:shop-2", unit.Value.GetProperty("formula").GetString());
            Assert.Equal("running", unit.Value.GetProperty("state").GetString());
            Assert.False(unit.Value.GetProperty("upgrading").GetBoolean());
        }
        Assert.Equal("42 orders", File.ReadAllText(Path.Combine(env.UnitDataDirectory("shop/1"), "orders.db")));
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(env.UnitDataDirectory("shop/1"))!, "formula", "old-only.txt")));
        var log = await Ok("log", "-e", "e2e", "shop/1");
        Assert.Contains("[upgrade-formula] running upgrade-formula of shop/1 at revision 2", log.Stdout);
    }

    [Fact]
    public async Task Log_shows_the_last_lines_and_follows_what_the_hooks_write_until_interrupted()
    {
        TestFormulas.Write(env.Repository, "diary", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "--wait", "diary");

        var whole = await Ok("log", "-e", "e2e", "diary/0");
        Assert.Contains("[start] hook start exited with code 0", whole.Stdout);
        var last = await Ok("log", "-e", "e2e", "-n", "2", "diary/0");
        var lines = last.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(whole.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^2..], lines);

        using var following = env.Ensemble.Start("log", "-e", "e2e", "--follow", "diary/0");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(following.PrintedSoFar.Contains("[start] hook start exited", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "log --follow to print the log so far");
        TestFormulas.Write(env.Repository, "diary", 2);
        await Ok("upgrade-formula", "-e", "e2e", "diary");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(following.PrintedSoFar.Contains("[upgrade-formula] running upgrade-formula of diary/0 at revision 2", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), "log --follow to print the upgrade hook's output as it is written");
        Assert.False(following.HasExited);
        following.Interrupt();
        var ended = await following.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(ended.ExitCode == 130, ended.ToString()); // 128 + SIGINT, as `tail -f` ends
        // Followed, the log was printed once, in order, nothing repeated or skipped.
        var after = await Ok("log", "-e", "e2e", "diary/0");
        Assert.StartsWith(ended.Stdout, after.Stdout, StringComparison.Ordinal);

        Assert.Contains("diary/7", (await Fails(3, "log", "-e", "e2e", "diary/7")).Stderr);
    }

    [Fact]
    public async Task A_failing_upgrade_hook_leaves_upgrade_error_and_resolved_retry_finishes_the_upgrade()
    {
        TestFormulas.Write(env.Repository, "queue", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "queue");
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await StatusAsync()).GetProperty("services").GetProperty("queue").GetProperty("units").GetProperty("queue/0").GetProperty("state").GetString() == "running",
            TimeSpan.FromSeconds(60), "queue/0 to run");
        File.WriteAllText(Path.Combine(env.UnitDataDirectory("queue/0"), "fail-upgrade-formula"), "");
        TestFormulas.Write(env.Repository, "queue", 2);

        var failed = await env.Ensemble.RunAsync("upgrade-formula", "-e", "e2e", "--wait", "queue");
        Assert.True(failed.ExitCode == 1, failed.ToString());
        Assert.Contains("did not reach local:queue-2", failed.Stdout);
        var unit = (await StatusAsync()).GetProperty("services").GetProperty("queue").GetProperty("units").GetProperty("queue/0");
        Assert.Equal("upgrade_error", unit.GetProperty("state").GetString());
        Assert.True(unit.GetProperty("upgrading").GetBoolean());
        Assert.Contains("exited with code 3", unit.GetProperty("error").GetString());

        File.Delete(Path.Combine(env.UnitDataDirectory("queue/0"), "fail-upgrade-formula"));
        await Ok("resolved", "-e", "e2e", "--retry", "queue/0");
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            var u = (await StatusAsync()).GetProperty("services").GetProperty("queue").GetProperty("units").GetProperty("queue/0");
            return u.GetProperty("formula").GetString() == "local:queue-2" && u.GetProperty("state").GetString() == "running";
        }, TimeSpan.FromSeconds(60), "queue/0 on revision 2");
    }

    [Fact]
    public async Task Bad_input_gets_one_sentence_and_its_exit_code_and_changes_nothing()
    {
        TestFormulas.Write(env.Repository, "blog", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "blog");
        var before = (await Ok("status", "--format", "json", "-e", "e2e")).Stdout;

        Assert.Contains("'nope' is not deployed", (await Fails(3, "upgrade-formula", "-e", "e2e", "nope")).Stderr);
        Assert.Contains("blog/7", (await Fails(3, "resolved", "-e", "e2e", "blog/7")).Stderr);
        Assert.Contains("not a unit name", (await Fails(2, "remove-unit", "-e", "e2e", "blog")).Stderr);
        Assert.Contains("formula 'ghost' not found", (await Fails(3, "deploy", "-e", "e2e", "--repository", env.Repository, "ghost")).Stderr);
        Assert.Contains("does not exist", (await Fails(3, "deploy", "-e", "e2e", "--repository", Path.Combine(env.Root, "missing"), "blog")).Stderr);
        Assert.Contains("no newer revision", (await Fails(5, "upgrade-formula", "-e", "e2e", "blog")).Stderr);
        Assert.Contains("already deployed", (await Fails(6, "deploy", "-e", "e2e", "--repository", env.Repository, "blog")).Stderr);
        Assert.Contains("'--bogus' is not an option", (await Fails(2, "status", "-e", "e2e", "--bogus")).Stderr);
        Assert.Contains("is not a command", (await Fails(2, "frobnicate")).Stderr);

        File.WriteAllText(Path.Combine(env.Repository, "blog", "metadata.yaml"), "name: blog\nrevision: two\n");
        var malformed = await Fails(4, "upgrade-formula", "-e", "e2e", "blog");
        Assert.Contains("metadata.yaml", malformed.Stderr);
        Assert.Contains("revision", malformed.Stderr);
        TestFormulas.Write(env.Repository, "blog", 1);

        Assert.Equal(before, (await Ok("status", "--format", "json", "-e", "e2e")).Stdout);
    }

    [Fact]
    public async Task A_second_upgrade_while_one_runs_is_refused()
    {
        TestFormulas.Write(env.Repository, "cache", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "cache");
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await StatusAsync()).GetProperty("services").GetProperty("cache").GetProperty("units").GetProperty("cache/0").GetProperty("state").GetString() == "running",
            TimeSpan.FromSeconds(60), "cache/0 to run");
        File.WriteAllText(Path.Combine(env.UnitDataDirectory("cache/0"), "hold"), "");
        var dir = TestFormulas.Write(env.Repository, "cache", 2);
        File.WriteAllText(Path.Combine(dir, "hooks", "upgrade-formula"), "#!/bin/sh\nwhile [ -f \"$ENSEMBLE_UNIT_DATA_DIR/hold\" ]; do sleep 0.05; done\n");
        await Ok("upgrade-formula", "-e", "e2e", "cache");

        TestFormulas.Write(env.Repository, "cache", 3);
        Assert.Contains("already running", (await Fails(6, "upgrade-formula", "-e", "e2e", "cache")).Stderr);
        File.Delete(Path.Combine(env.UnitDataDirectory("cache/0"), "hold"));
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await StatusAsync()).GetProperty("services").GetProperty("cache").GetProperty("upgrade-running").GetBoolean() == false,
            TimeSpan.FromSeconds(60), "the cache upgrade to end");
    }

    [Fact]
    public async Task Status_filters_and_formats_and_remove_unit_takes_several_units()
    {
        TestFormulas.Write(env.Repository, "hello", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "-n3", "--wait", "hello");

        var yaml = await Ok("status", "hello", "--format", "yaml", "-e", "e2e");
        var document = new YamlDotNet.Serialization.Deserializer().Deserialize<Dictionary<string, object>>(yaml.Stdout);
        var services = (Dictionary<object, object>)document["services"];
        Assert.Equal(["hello"], services.Keys.Cast<string>());
        var units = (Dictionary<object, object>)((Dictionary<object, object>)services["hello"])["units"];
        Assert.Equal(["hello/0", "hello/1", "hello/2"], units.Keys.Cast<string>());
        Assert.Equal("running", ((Dictionary<object, object>)units["hello/1"])["state"]);

        var one = JsonDocument.Parse((await Ok("status", "hello/1", "--format", "json", "-e", "e2e")).Stdout).RootElement;
        Assert.Equal(["hello/1"], one.GetProperty("services").GetProperty("hello").GetProperty("units").EnumerateObject().Select(u => u.Name));
        Assert.Contains("'nope' is not a deployed service or unit", (await Fails(3, "status", "nope", "-e", "e2e")).Stderr);
        Assert.Contains("'hello/9' is not a deployed service or unit", (await Fails(3, "status", "hello", "hello/9", "-e", "e2e")).Stderr);

        var table = (await Ok("status", "hello", "-e", "e2e")).Stdout;
        foreach (var header in new[] { "SERVICE", "FORMULA", "UNITS", "UNIT", "STATE", "MACHINE", "UPGRADE", "ERROR" })
            Assert.Contains(header, table);
        Assert.Contains("hello/2", table);

        // One unit that does not exist, and nothing is removed.
        Assert.Contains("hello/9", (await Fails(3, "remove-unit", "-e", "e2e", "hello/1", "hello/9")).Stderr);
        Assert.Equal(3, (await StatusAsync()).GetProperty("services").GetProperty("hello").GetProperty("units").EnumerateObject().Count());
        var removed = await Ok("remove-unit", "-e", "e2e", "hello/1", "hello/2");
        Assert.Contains("removed hello/1", removed.Stdout);
        Assert.Contains("removed hello/2", removed.Stdout);
        Assert.Equal(["hello/0"], (await StatusAsync()).GetProperty("services").GetProperty("hello").GetProperty("units").EnumerateObject().Select(u => u.Name));
    }

    [Fact]
    public async Task Resolved_takes_several_units()
    {
        TestFormulas.Write(env.Repository, "mend", 1);
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "-n", "2", "--wait", "mend");
        var units = new[] { "mend/0", "mend/1" };
        foreach (var unit in units) File.WriteAllText(Path.Combine(env.UnitDataDirectory(unit), "fail-upgrade-formula"), "");
        TestFormulas.Write(env.Repository, "mend", 2);
        var failed = await env.Ensemble.RunAsync("upgrade-formula", "-e", "e2e", "--wait", "mend");
        Assert.True(failed.ExitCode == 1, failed.ToString());
        Assert.Contains("2 of 2 units did not reach local:mend-2: mend/0, mend/1", failed.Stdout);

        foreach (var unit in units) File.Delete(Path.Combine(env.UnitDataDirectory(unit), "fail-upgrade-formula"));
        var resolved = await Ok("resolved", "-e", "e2e", "--retry", "mend/0", "mend/1");
        Assert.Contains("mend/0 resolved, retrying", resolved.Stdout);
        Assert.Contains("mend/1 resolved, retrying", resolved.Stdout);
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await StatusAsync()).GetProperty("services").GetProperty("mend").GetProperty("units").EnumerateObject()
                .All(u => u.Value.GetProperty("formula").GetString() == "local:mend-2" && u.Value.GetProperty("state").GetString() == "running"),
            TimeSpan.FromSeconds(60), "both units on revision 2");
        // Neither unit is in an error state any more: both refusals, in one sentence, with their exit code.
        Assert.Contains("2 of 2 units were not resolved", (await Fails(6, "resolved", "-e", "e2e", "mend/0", "mend/1")).Stderr);
    }
}

/// <summary>Environments that are not there, or not answering, and destroying one.</summary>
public sealed class EnvironmentLifecycleTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-e2e-env-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Commands_against_an_environment_never_bootstrapped_say_so()
    {
        var result = await new EnsembleCommand(Path.Combine(_root, "home")).RunAsync("status");
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("environment 'local' is not bootstrapped; run 'ensemble bootstrap --local", result.Stderr);
    }

    [Fact]
    public async Task An_environment_whose_node_does_not_answer_is_reported_within_seconds()
    {
        // A record pointing at a live process (this test host) and a port nothing listens on.
        var home = Path.Combine(_root, "home");
        var directory = Path.Combine(home, "environments", "ghost");
        Directory.CreateDirectory(directory);
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            File.WriteAllText(Path.Combine(directory, "environment.json"), JsonSerializer.Serialize(new
            {
                name = "ghost", contact = $"akka.tcp://ensemble@127.0.0.1:{port}/system/receptionist",
                pid = Environment.ProcessId, dataDirectory = directory, log = Path.Combine(directory, "agent.log"),
            }));
        }
        var result = await new EnsembleCommand(home).RunAsync(TimeSpan.FromSeconds(40), "status", "-e", "ghost");
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("environment 'ghost' is not answering", result.Stderr);
    }

    [Fact]
    public async Task Destroy_environment_stops_the_node_and_leaves_no_process_behind()
    {
        var ensemble = new EnsembleCommand(Path.Combine(_root, "home"));
        var bootstrap = await ensemble.RunAsync("bootstrap", "--local", "--name", "brief");
        Assert.True(bootstrap.ExitCode == 0, bootstrap.ToString());
        var pid = ensemble.NodePid("brief");
        Assert.True(EnsembleCommand.IsRunning(pid));
        var again = await ensemble.RunAsync("bootstrap", "--local", "--name", "brief");
        Assert.Equal(6, again.ExitCode);

        Assert.Contains("already running", again.Stderr);

        var destroyed = await ensemble.RunAsync("destroy-environment", "brief");
        Assert.True(destroyed.ExitCode == 0, destroyed.ToString());
        Assert.False(EnsembleCommand.IsRunning(pid));
        Assert.DoesNotContain(Process.GetProcesses(), p => SafeCommandLine(p.Id).Contains(Path.Combine(_root, "home")));
        Assert.Equal(7, (await ensemble.RunAsync("status", "-e", "brief")).ExitCode);
    }

    private static string SafeCommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }
}
