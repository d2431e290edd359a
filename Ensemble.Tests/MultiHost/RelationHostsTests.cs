using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// The example formula pair on two hosts, as an operator runs it: db on one host, web on the other, related with the
/// installed CLI. The db's address and the password it generated end up in web's configuration file on the other
/// host; an upgrade of db announces a new schema that web then sees; remove-relation takes the settings away.
/// </summary>
public sealed class RelationHostsTests(ITestOutputHelper output)
{
    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            File.Copy(file, target, overwrite: true);
            File.SetUnixFileMode(target, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public async Task The_db_address_and_password_reach_the_web_config_on_another_host_and_an_upgrade_of_db_reaches_it_too()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        var (a1, a2) = (env.Network["a1"], env.Network["a2"]);
        await env.StartAgentsAsync("a1", "a2");

        // The examples, as the operator has them on their host.
        var examples = Path.Combine(Ensemble.Tests.EndToEnd.InstalledTool.RepositoryRoot, "examples");
        var formulas = Path.Combine(env.Operator.DataRoot, "formulas");
        var upgrades = Path.Combine(env.Operator.DataRoot, "upgrades");
        CopyDirectory(Path.Combine(examples, "formulas"), formulas);
        CopyDirectory(Path.Combine(examples, "upgrades"), upgrades);

        Assert.Equal(0, (await env.EnsembleAsync("deploy", "--repository", formulas, "--to", "a1", "--wait", "db")).ExitCode);
        Assert.Equal(0, (await env.EnsembleAsync("deploy", "--repository", formulas, "--to", "a2", "--wait", "web")).ExitCode);
        var added = await env.EnsembleAsync("add-relation", "web", "db");
        Assert.True(added.ExitCode == 0, added.ToString());
        Assert.Contains("db:db web:db (sql)", added.Stdout, StringComparison.Ordinal);

        var password = await File.ReadAllTextAsync(Path.Combine(MultiHostEnvironment.DataDirectoryOf(a1), "machines", "a1", "units", "db-0", "data", "password"));
        var conf = Path.Combine(MultiHostEnvironment.DataDirectoryOf(a2), "machines", "a2", "units", "web-0", "data", "web.conf");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(File.Exists(conf)), TimeSpan.FromSeconds(60), "web.conf on a2" + env.Logs());
        var text = await File.ReadAllTextAsync(conf);
        Assert.Contains($"database_host={a1.Address}\n", text, StringComparison.Ordinal);
        Assert.Contains($"database_password={password}\n", text, StringComparison.Ordinal);
        Assert.Contains("database_user=web-0\n", text, StringComparison.Ordinal);
        Assert.Contains("database_schema=\n", text, StringComparison.Ordinal);

        var status = await env.StatusAsync();
        var relation = Assert.Single(status.GetProperty("relations").EnumerateArray());
        Assert.Equal(["db:db", "web:db"], relation.GetProperty("endpoints").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal(["db/0", "web/0"], relation.GetProperty("units").EnumerateArray().Select(e => e.GetString()!));

        var upgrade = await env.EnsembleAsync("upgrade-formula", "--repository", upgrades, "--wait", "db");
        Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
        await LocalEnvironment.WaitUntilAsync(async () => (await File.ReadAllTextAsync(conf)).Contains("database_schema=2\n", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), "web to see the schema db's upgrade announced");
        var log = await env.EnsembleAsync("log", "db/0");
        Assert.Contains("upgrade: db:" + relation.GetProperty("id").GetInt32() + " has web/0 (user web-0)", log.Stdout, StringComparison.Ordinal);

        Assert.Equal(0, (await env.EnsembleAsync("remove-relation", "db", "web")).ExitCode);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(!File.Exists(conf)), TimeSpan.FromSeconds(60), "web.conf to go with the relation");
        await env.StatusUntilAsync(s => s.GetProperty("relations").GetArrayLength() == 0, TimeSpan.FromSeconds(60), "the relation to be gone");
    }

    private static void WriteHook(string formula, string hook, string body)
    {
        var path = Path.Combine(formula, "hooks", hook);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "#!/bin/sh\nset -e\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    [Fact]
    public async Task An_agent_node_killed_9_mid_relation_hook_runs_it_again_once_with_the_latest_settings_when_it_is_back()
    {
        await using var env = await MultiHostEnvironment.StartAsync(output, "a1", "a2");
        await env.StartAgentsAsync("a1");
        var line = await env.AddMachineAsync("a2");
        var node = env.StartLine(env.Network["a2"], line);
        await node.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);
        await env.StatusUntilAsync(s => MultiHostEnvironment.MachineState(s, "a2") == "started", TimeSpan.FromSeconds(60), "a2 started");

        var repository = Path.Combine(env.Operator.DataRoot, "formulas");
        var hold = Path.Combine(env.SharedDirectory, "hold");
        var prov = Path.Combine(repository, "prov");
        Directory.CreateDirectory(prov);
        File.WriteAllText(Path.Combine(prov, "metadata.yaml"), "name: prov\nrevision: 1\nsummary: provides a value\ndescription: x\nprovides:\n  data: kv\n");
        File.WriteAllText(Path.Combine(prov, "config.yaml"), "options:\n  value: {type: int, default: 1}\n");
        WriteHook(prov, "data-relation-joined", "relation-set value=\"$(config-get value)\"");
        WriteHook(prov, "config-changed", "for id in $(relation-ids data); do relation-set -r \"$id\" value=\"$(config-get value)\"; done");
        var cons = Path.Combine(repository, "cons");
        Directory.CreateDirectory(cons);
        File.WriteAllText(Path.Combine(cons, "metadata.yaml"), "name: cons\nrevision: 1\nsummary: reads a value\ndescription: x\nrequires:\n  data: kv\n");
        WriteHook(cons, "data-relation-changed", $$"""
            trace="$ENSEMBLE_UNIT_DATA_DIR/trace"
            value="$(relation-get value)"
            echo "begin $ENSEMBLE_REMOTE_UNIT $value" >> "$trace"
            while [ -f "{{hold}}" ]; do sleep 0.05; done
            echo "end $ENSEMBLE_REMOTE_UNIT $value" >> "$trace"
            """);

        Assert.Equal(0, (await env.EnsembleAsync("deploy", "--repository", repository, "--to", "a1", "--wait", "prov")).ExitCode);
        Assert.Equal(0, (await env.EnsembleAsync("deploy", "--repository", repository, "--to", "a2", "--wait", "cons")).ExitCode);
        var trace = Path.Combine(MultiHostEnvironment.DataDirectoryOf(env.Network["a2"]), "machines", "a2", "units", "cons-0", "data", "trace");
        string[] Trace() => File.Exists(trace) ? File.ReadAllLines(trace) : [];
        await File.WriteAllTextAsync(hold, "");
        Assert.Equal(0, (await env.EnsembleAsync("add-relation", "cons", "prov")).ExitCode);
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Trace().Any(l => l.StartsWith("begin prov/0", StringComparison.Ordinal))), TimeSpan.FromSeconds(60),
            "cons/0's changed hook to begin");

        // kill -9 of the node and the hook it runs; meanwhile prov's value changes.
        node.Kill();
        await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, (await env.EnsembleAsync("set", "prov", "value=2")).ExitCode);
        File.Delete(hold);
        var restarted = env.StartLine(env.Network["a2"], line);
        await restarted.WaitForOutputAsync("is up", MultiHostEnvironment.NodeStart);

        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Trace().Any(l => l.StartsWith("end ", StringComparison.Ordinal))), TimeSpan.FromSeconds(90),
            "the changed hook to run again and end" + env.Logs());
        // The killed run never ended; the one after it saw the latest value; nothing ran twice for one change.
        Assert.Equal(["begin prov/0 2", "end prov/0 2"], Trace()[1..]);
        Assert.StartsWith("begin prov/0", Trace()[0], StringComparison.Ordinal);
        var status = await env.StatusUntilAsync(s => s.GetProperty("services").GetProperty("cons").GetProperty("units").GetProperty("cons/0").GetProperty("state").GetString() == "running",
            TimeSpan.FromSeconds(60), "cons/0 running");
        Assert.Equal(JsonValueKind.Null, status.GetProperty("services").GetProperty("cons").GetProperty("units").GetProperty("cons/0").GetProperty("error").ValueKind);
        Assert.Equal(3, Trace().Length);
    }
}
