using System.Text.Json;
using Ensemble.Hooks.Tools;
using Xunit;

namespace Ensemble.Tests.Hooks.Tools;

/// <summary>The hook tools' answers, without sockets or processes.</summary>
public sealed class HookToolSessionTests
{
    private readonly List<string> log = [];

    /// <summary>wordpress/0, related to mysql over db:3 (one unit) and to a second database over db:7 (two units), and to a cache over cache:9.</summary>
    private static InMemoryHookToolData Wordpress() => new InMemoryHookToolData("wordpress/0")
        .Relation(3, "db", "mysql", "mysql/0")
        .Relation(7, "db", "mysql", "reports/10", "reports/2")
        .Relation(9, "cache", "memcache", "memcached/0", "reports/2")
        .Committed(3, "mysql/0", ("host", "10.0.0.9"), ("user", "wp"), ("password", "s3cret"))
        .Committed(3, "wordpress/0", ("database", "wordpress"), ("stale", "yes"))
        .Committed(7, "reports/2", ("host", "10.0.0.12"));

    private HookSession InRelationHook(InMemoryHookToolData data, string remote = "mysql/0") =>
        new(data, new RelationHookScope(3, "db", remote), log.Add, "db-relation-changed");

    private HookSession Outside(InMemoryHookToolData data, string hook = "upgrade-formula") => new(data, null, log.Add, hook);

    private static void AssertRefused(HookToolResult result, int exitCode, params string[] fragments)
    {
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.EndsWith(".\n", result.Stderr);
        Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
        foreach (var fragment in fragments) Assert.Contains(fragment, result.Stderr);
    }

    [Fact]
    public void Relation_get_in_a_relation_hook_reads_the_remote_unit_of_the_hooks_relation()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal(new HookToolResult(0, "10.0.0.9\n", ""), session.Invoke("relation-get", ["host"]));
        Assert.Equal(new HookToolResult(0, "host: 10.0.0.9\npassword: s3cret\nuser: wp\n", ""), session.Invoke("relation-get", []));
        Assert.Equal("host: 10.0.0.9\npassword: s3cret\nuser: wp\n", session.Invoke("relation-get", ["-"]).Stdout);
        Assert.Equal("""{"host":"10.0.0.9","password":"s3cret","user":"wp"}""" + "\n", session.Invoke("relation-get", ["--format", "json"]).Stdout);
        Assert.Equal("\"wp\"\n", session.Invoke("relation-get", ["--format=json", "user"]).Stdout);
    }

    [Fact]
    public void Relation_get_of_a_missing_key_prints_nothing_and_succeeds()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("relation-get", ["port"]));
        Assert.Equal(new HookToolResult(0, "null\n", ""), session.Invoke("relation-get", ["--format", "json", "port"]));
        // A unit that has written nothing yet has no settings, which is not an error either.
        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("relation-get", ["-r", "db:7", "-", "reports/10"]));
        Assert.Equal(new HookToolResult(0, "{}\n", ""), session.Invoke("relation-get", ["-r", "db:7", "--format", "json", "-", "reports/10"]));
    }

    [Fact]
    public void Relation_get_reads_another_relation_and_unit_when_named()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal("10.0.0.12\n", session.Invoke("relation-get", ["-r", "db:7", "host", "reports/2"]).Stdout);
        Assert.Equal("10.0.0.12\n", session.Invoke("relation-get", ["-r", "7", "host", "reports/2"]).Stdout);
        Assert.Equal("10.0.0.12\n", session.Invoke("relation-get", ["host", "reports/2", "--relation=db:7"]).Stdout);
    }

    [Fact]
    public void Relation_get_of_the_units_own_settings_shows_its_pending_writes()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal(0, session.Invoke("relation-set", ["database=blog", "url=http://blog/", "stale="]).ExitCode);

        Assert.Equal("database: blog\nurl: http://blog/\n", session.Invoke("relation-get", ["-", "wordpress/0"]).Stdout);
        Assert.Equal("", session.Invoke("relation-get", ["stale", "wordpress/0"]).Stdout);
        // The remote unit's settings are not touched by this unit's writes.
        Assert.Equal("", session.Invoke("relation-get", ["url"]).Stdout);
    }

    [Fact]
    public void Relation_set_keeps_writes_pending_with_an_empty_value_deleting_the_key()
    {
        var session = InRelationHook(Wordpress());

        session.Invoke("relation-set", ["database=blog", "url=a=b"]);
        session.Invoke("relation-set", ["-r", "cache:9", "ttl=60"]);
        session.Invoke("relation-set", ["url=", "stale="]);

        var pending = session.PendingSettings;
        Assert.Equal(new Dictionary<string, string?> { ["database"] = "blog", ["url"] = null, ["stale"] = null }, pending[3]);
        Assert.Equal(new Dictionary<string, string?> { ["ttl"] = "60" }, pending[9]);
        Assert.Equal([3, 9], pending.Keys.Order());
    }

    [Theory]
    [InlineData("novalue", "'novalue' is not KEY=VALUE")]
    [InlineData("=x", "is not a settings key")]
    [InlineData("two words=x", "'two words' in 'two words=x' is not a settings key")]
    public void Relation_set_refuses_a_bad_argument_and_writes_nothing(string bad, string sentence)
    {
        var session = InRelationHook(Wordpress());

        AssertRefused(session.Invoke("relation-set", ["good=1", bad]), 2, "relation-set: ", sentence, "usage: relation-set");

        Assert.Empty(session.PendingSettings);
    }

    [Fact]
    public void Relation_set_with_nothing_to_set_is_a_usage_error()
    {
        AssertRefused(InRelationHook(Wordpress()).Invoke("relation-set", []), 2, "nothing to set");
    }

    [Theory]
    [InlineData("relation-get", new string[] { "host", "mysql/0" })]
    [InlineData("relation-set", new string[] { "a=b" })]
    [InlineData("relation-list", new string[0])]
    public void Relation_tools_outside_a_relation_hook_need_the_relation_named(string tool, string[] args)
    {
        var session = Outside(Wordpress());

        AssertRefused(session.Invoke(tool, args), 1,
            $"{tool}: this hook (upgrade-formula) runs outside a relation; name one with -r ID (relation-ids NAME lists them).");
        Assert.Empty(session.PendingSettings);
    }

    [Fact]
    public void Outside_a_relation_hook_the_relation_tools_work_with_the_relation_named()
    {
        var session = Outside(Wordpress());

        Assert.Equal("db:3\ndb:7\n", session.Invoke("relation-ids", ["db"]).Stdout);
        Assert.Equal("reports/2\nreports/10\n", session.Invoke("relation-list", ["-r", "db:7"]).Stdout);
        Assert.Equal("mysql/0\nreports/2\nreports/10\n", session.Invoke("relation-list", ["db"]).Stdout);
        Assert.Equal("10.0.0.9\n", session.Invoke("relation-get", ["-r", "db:3", "host", "mysql/0"]).Stdout);
        Assert.Equal(0, session.Invoke("relation-set", ["-r", "db:3", "schema=2"]).ExitCode);
        Assert.Equal("2\n", session.Invoke("relation-get", ["-r", "db:3", "schema", "wordpress/0"]).Stdout);
    }

    [Fact]
    public void A_relation_id_the_unit_is_not_in_is_refused_pointing_to_relation_ids()
    {
        var session = InRelationHook(Wordpress());

        AssertRefused(session.Invoke("relation-get", ["-r", "db:4", "host", "mysql/0"]), 1,
            "relation-get: this unit is in no relation db:4; relation-ids db lists the relations it is in.");
        AssertRefused(session.Invoke("relation-list", ["-r", "cache:3"]), 1, "no relation cache:3", "relation-ids cache");
        AssertRefused(session.Invoke("relation-set", ["-r", "12", "a=b"]), 1, "no relation 12", "relation-ids NAME");
        AssertRefused(session.Invoke("relation-set", ["-r", "db:x", "a=b"]), 2, "'db:x' is not a relation id; give it as NAME:N or N");
        Assert.Empty(session.PendingSettings);
    }

    [Fact]
    public void Relation_get_refuses_units_outside_the_relation_and_names_that_are_not_units()
    {
        var session = InRelationHook(Wordpress());

        AssertRefused(session.Invoke("relation-get", ["host", "memcached/0"]), 1,
            "unit memcached/0 is not in relation db:3; relation-list -r db:3 lists the units in it.");
        AssertRefused(session.Invoke("relation-get", ["host", "mysql"]), 2, "'mysql' is not a unit name; give it as SERVICE/N");
    }

    [Fact]
    public void In_relation_broken_there_is_no_remote_unit_to_default_to()
    {
        var data = Wordpress();
        var session = new HookSession(data, new RelationHookScope(3, "db", null), log.Add, "db-relation-broken");

        AssertRefused(session.Invoke("relation-get", ["host"]), 1, "name the unit to read in relation db:3");
        Assert.Equal("10.0.0.9\n", session.Invoke("relation-get", ["host", "mysql/0"]).Stdout);
    }

    [Fact]
    public void A_remote_unit_departing_can_still_be_read_in_its_hook()
    {
        var data = Wordpress();
        data.RelationList[0] = data.RelationList[0] with { Units = [] };
        var session = new HookSession(data, new RelationHookScope(3, "db", "mysql/0"), log.Add, "db-relation-departed");

        Assert.Equal("10.0.0.9\n", session.Invoke("relation-get", ["host"]).Stdout);
        Assert.Equal("", session.Invoke("relation-list", []).Stdout);
    }

    [Fact]
    public void Relation_list_lists_remote_units_sorted_by_service_and_number()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal("mysql/0\n", session.Invoke("relation-list", []).Stdout);
        Assert.Equal("reports/2\nreports/10\n", session.Invoke("relation-list", ["-r", "7"]).Stdout);
        Assert.Equal("reports/2\nreports/10\n", session.Invoke("relation-list", ["db:7"]).Stdout);
        Assert.Equal("""["mysql/0","reports/2","reports/10"]""" + "\n", session.Invoke("relation-list", ["db", "--format", "json"]).Stdout);
        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("relation-list", ["website"]));
        AssertRefused(session.Invoke("relation-list", ["-r", "3", "db"]), 2, "give either -r ID or a relation name, not both");
    }

    [Fact]
    public void Relation_ids_lists_every_relation_on_an_endpoint()
    {
        var session = InRelationHook(Wordpress());

        Assert.Equal("db:3\ndb:7\n", session.Invoke("relation-ids", ["db"]).Stdout);
        Assert.Equal("db:3\ndb:7\n", session.Invoke("relation-ids", []).Stdout);
        Assert.Equal("cache:9\n", session.Invoke("relation-ids", ["cache"]).Stdout);
        Assert.Equal("""["db:3","db:7"]""" + "\n", session.Invoke("relation-ids", ["--format", "json", "db"]).Stdout);
        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("relation-ids", ["website"]));
        AssertRefused(Outside(Wordpress(), "config-changed").Invoke("relation-ids", []), 1,
            "relation-ids: this hook (config-changed) runs outside a relation; name the endpoint, as in relation-ids NAME.");
    }

    private static InMemoryHookToolData Configured()
    {
        var data = Wordpress();
        data.ConfigValues["title"] = "My blog";
        data.ConfigValues["port"] = 8080L;
        data.ConfigValues["ratio"] = 0.25;
        data.ConfigValues["debug"] = false;
        data.ConfigValues["admin"] = null;
        return data;
    }

    [Fact]
    public void Config_get_prints_one_value_plainly_or_all_values()
    {
        var session = Outside(Configured(), "config-changed");

        Assert.Equal("My blog\n", session.Invoke("config-get", ["title"]).Stdout);
        Assert.Equal("8080\n", session.Invoke("config-get", ["port"]).Stdout);
        Assert.Equal("0.25\n", session.Invoke("config-get", ["ratio"]).Stdout);
        Assert.Equal("false\n", session.Invoke("config-get", ["debug"]).Stdout);
        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("config-get", ["admin"]));
        Assert.Equal("debug: false\nport: 8080\nratio: 0.25\ntitle: My blog\n", session.Invoke("config-get", []).Stdout);
    }

    [Fact]
    public void Config_get_in_json_keeps_the_types()
    {
        var session = Outside(Configured(), "config-changed");

        using var all = JsonDocument.Parse(session.Invoke("config-get", ["--format", "json"]).Stdout);
        Assert.Equal(JsonValueKind.String, all.RootElement.GetProperty("title").ValueKind);
        Assert.Equal(8080, all.RootElement.GetProperty("port").GetInt64());
        Assert.Equal(0.25, all.RootElement.GetProperty("ratio").GetDouble());
        Assert.Equal(JsonValueKind.False, all.RootElement.GetProperty("debug").ValueKind);
        Assert.False(all.RootElement.TryGetProperty("admin", out _));
        Assert.Equal("8080\n", session.Invoke("config-get", ["--format", "json", "port"]).Stdout);
        Assert.Equal("null\n", session.Invoke("config-get", ["--format", "json", "admin"]).Stdout);
    }

    [Fact]
    public void Config_get_of_an_unknown_option_names_it_and_lists_the_options()
    {
        AssertRefused(Outside(Configured()).Invoke("config-get", ["titel"]), 1,
            "config-get: this formula has no option 'titel'; its options are admin, debug, port, ratio, title.");
        AssertRefused(Outside(Wordpress()).Invoke("config-get", ["titel"]), 1, "its config.yaml declares no options");
    }

    [Fact]
    public void Unit_get_prints_the_units_addresses()
    {
        var session = Outside(Wordpress());

        Assert.Equal(new HookToolResult(0, "10.0.0.5\n", ""), session.Invoke("unit-get", ["private-address"]));
        Assert.Equal("203.0.113.5\n", session.Invoke("unit-get", ["public-address"]).Stdout);
        AssertRefused(session.Invoke("unit-get", ["address"]), 2, "there is no unit setting 'address'; give private-address or public-address");
        AssertRefused(session.Invoke("unit-get", []), 2, "usage: unit-get");
    }

    [Fact]
    public void Ensemble_log_appends_to_the_units_log_at_the_level_given()
    {
        var session = Outside(Wordpress(), "install");

        Assert.Equal(new HookToolResult(0, "", ""), session.Invoke("ensemble-log", ["installing", "packages"]));
        session.Invoke("ensemble-log", ["-l", "WARNING", "disk", "is", "full"]);
        session.Invoke("ensemble-log", ["--log-level=debug", "two\nlines"]);
        session.Invoke("ensemble-log", ["-l", "ERROR", "--", "-x failed"]);

        Assert.Equal(["INFO: installing packages", "WARNING: disk is full", "DEBUG: two", "DEBUG: lines", "ERROR: -x failed"], log);
        AssertRefused(session.Invoke("ensemble-log", ["-l", "LOUD", "hi"]), 2, "'LOUD' is not a log level; give DEBUG, INFO, WARNING or ERROR");
        AssertRefused(session.Invoke("ensemble-log", []), 2, "nothing to log");
        Assert.Equal(5, log.Count);
    }

    [Fact]
    public void Bad_usage_exits_2_with_the_usage_and_help_exits_0()
    {
        var session = InRelationHook(Wordpress());

        AssertRefused(session.Invoke("relation-get", ["--unit", "x"]), 2, "there is no flag --unit", "usage: relation-get [-r ID]");
        AssertRefused(session.Invoke("relation-get", ["a", "b/1", "c"]), 2, "too many arguments (a b/1 c)");
        AssertRefused(session.Invoke("relation-get", ["--format", "yaml"]), 2, "--format takes text or json, not 'yaml'");
        AssertRefused(session.Invoke("relation-get", ["-r"]), 2, "-r needs a value");
        AssertRefused(session.Invoke("open-port", ["80"]), 2, "'open-port' is not a hook tool");
        Assert.Equal(new HookToolResult(0, "usage: relation-set [-r ID] KEY=VALUE...\n", ""), session.Invoke("relation-set", ["--help"]));
    }
}
