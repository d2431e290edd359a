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
}
