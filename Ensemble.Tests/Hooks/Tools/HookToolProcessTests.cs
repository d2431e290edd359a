using System.Diagnostics;
using Ensemble.Cli;
using Ensemble.Hooks;
using Ensemble.Hooks.Tools;
using Ensemble.Tests.Units;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.Hooks.Tools;

/// <summary>
/// Hook tools as hooks use them: real `#!/bin/sh` hooks run by <see cref="ProcessHookRunner"/>, calling the
/// tool wrappers on their PATH, which run this build's `ensemble hook-tool` against a real <see cref="HookToolServer"/>.
/// </summary>
public sealed class HookToolProcessTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly ITestOutputHelper output;
    private readonly ScratchDirectory scratch = new("ensemble-hooktools");
    private readonly List<string> log = [];
    private readonly string tools;
    private readonly string formula;
    private readonly string data;
    private HookToolServer server = null!;

    public HookToolProcessTests(ITestOutputHelper output)
    {
        this.output = output;
        tools = scratch.Combine("agent", "hook tools");
        formula = scratch.Combine("units", "wordpress-0", "formula");
        data = scratch.Combine("units", "wordpress-0", "data");
        Directory.CreateDirectory(Path.Combine(formula, "hooks"));
        Directory.CreateDirectory(data);
        HookTools.WriteToolsDirectory(tools, HookTools.DefaultClientCommand(typeof(EnsembleCli).Assembly.Location));
    }

    public Task InitializeAsync()
    {
        server = HookToolServer.Start(scratch.Combine("agent", "agent.socket"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        scratch.Dispose();
    }

    private static InMemoryHookToolData Wordpress()
    {
        var unit = new InMemoryHookToolData("wordpress/0")
            .Relation(3, "db", "mysql", "mysql/0")
            .Relation(7, "db", "mysql", "reports/10", "reports/2")
            .Committed(3, "mysql/0", ("host", "10.0.0.9"), ("user", "wp"))
            .Committed(3, "wordpress/0", ("database", "old"))
            .Committed(7, "reports/2", ("host", "10.0.0.12"));
        unit.ConfigValues["title"] = "My blog";
        unit.ConfigValues["port"] = 8080L;
        unit.ConfigValues["debug"] = true;
        return unit;
    }

    private HookSession Session(RelationHookScope? scope, string hook) => new(Wordpress(), scope, line => { lock (log) log.Add(line); }, hook);

    private void WriteHook(string hook, string body)
    {
        var path = Path.Combine(formula, "hooks", hook);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Runs a hook the way the unit agent will: registered for the run, unregistered when it ends.</summary>
    private async Task<HookResult> RunHookAsync(string hook, HookSession session)
    {
        var token = server.Register(session);
        var context = new HookContext("wordpress/0", "wordpress", formula, data, 1, scratch.Combine("units", "wordpress-0", "unit.log"),
            Environment: HookTools.HookEnvironment(server.SocketPath, token, session.Scope), ToolsDirectory: tools);
        try { return await new ProcessHookRunner(TimeSpan.FromMinutes(2)).RunAsync(hook, context, CancellationToken.None); }
        finally { server.Unregister(token); }
    }

    /// <summary>Runs one tool wrapper directly, as a process a hook left behind would.</summary>
    private async Task<(int Exit, string Stdout, string Stderr)> RunToolAsync(string tool, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(tools, tool)) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("ENSEMBLE_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(inherited);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(Deadline);
        return (process.ExitCode, await stdout, await stderr);
    }

    private string Read(string name) => File.ReadAllText(Path.Combine(data, name));

    [Fact]
    public async Task A_relation_hook_reads_and_writes_through_its_tools_and_its_writes_wait_for_the_agent()
    {
        WriteHook("db-relation-changed", """
            set -e
            {
              echo "ids=$(relation-ids db | tr '\n' ' ')"
              echo "list=$(relation-list | tr '\n' ' ')"
              echo "list7=$(relation-list -r db:7 | tr '\n' ' ')"
              echo "host=$(relation-get host)"
              echo "host7=$(relation-get -r db:7 host reports/2)"
              relation-set database=blog "greeting=hello world"
              echo "own=$(relation-get - "$ENSEMBLE_UNIT_NAME" | tr '\n' ';')"
              echo "title=$(config-get title)"
              echo "debug=$(config-get debug)"
              echo "config=$(config-get --format json)"
              echo "address=$(unit-get private-address)"
              echo "relation=$ENSEMBLE_RELATION id=$ENSEMBLE_RELATION_ID remote=$ENSEMBLE_REMOTE_UNIT"
            } > "$ENSEMBLE_UNIT_DATA_DIR/tools.txt"
            ensemble-log -l WARNING "using database at $(relation-get host)"
            # Left running by the hook: calls a tool once the test says its hook is over.
            (
              set +e
              i=0
              while [ ! -f "$ENSEMBLE_UNIT_DATA_DIR/go" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
              relation-set late=1 2> "$ENSEMBLE_UNIT_DATA_DIR/late.err"
              echo $? > "$ENSEMBLE_UNIT_DATA_DIR/late.code.partial"
              mv "$ENSEMBLE_UNIT_DATA_DIR/late.code.partial" "$ENSEMBLE_UNIT_DATA_DIR/late.code"
            ) > /dev/null 2>&1 < /dev/null &
            """);
        var session = Session(new RelationHookScope(3, "db", "mysql/0"), "db-relation-changed");

        var result = await RunHookAsync("db-relation-changed", session);

        Assert.True(result.Succeeded, $"{result.Describe()}; unit log:\n{File.ReadAllText(scratch.Combine("units", "wordpress-0", "unit.log"))}");
        Assert.Equal("""
            ids=db:3 db:7 
            list=mysql/0 
            list7=reports/2 reports/10 
            host=10.0.0.9
            host7=10.0.0.12
            own=database: blog;greeting: hello world;
            title=My blog
            debug=true
            config={"debug":true,"port":8080,"title":"My blog"}
            address=10.0.0.5
            relation=db id=db:3 remote=mysql/0

            """, Read("tools.txt"));
        Assert.Equal(new Dictionary<string, string?> { ["database"] = "blog", ["greeting"] = "hello world" }, session.PendingSettings[3]);
        Assert.Single(session.PendingSettings);
        lock (log) Assert.Equal(["WARNING: using database at 10.0.0.9"], log);

        // The hook is over and unregistered: what it left behind gets a refusal, and writes nothing.
        File.WriteAllText(Path.Combine(data, "go"), "");
        Assert.True(await ScratchDirectory.EventuallyAsync(() => File.Exists(Path.Combine(data, "late.code")), Deadline), "the hook's leftover process never called its tool");
        Assert.Equal("1", Read("late.code").Trim());
        Assert.Equal("hook tools work only while their hook runs; relation-set was called outside one.\n", Read("late.err"));
        Assert.False(session.PendingSettings[3].ContainsKey("late"));
    }

    [Fact]
    public async Task Outside_a_relation_hook_relation_get_needs_the_relation_named()
    {
        WriteHook("upgrade-formula", """
            echo "relation=${ENSEMBLE_RELATION-unset} id=${ENSEMBLE_RELATION_ID-unset} remote=${ENSEMBLE_REMOTE_UNIT-unset}" > "$ENSEMBLE_UNIT_DATA_DIR/env.txt"
            relation-get host mysql/0 > "$ENSEMBLE_UNIT_DATA_DIR/bare.out" 2> "$ENSEMBLE_UNIT_DATA_DIR/bare.err"
            echo $? > "$ENSEMBLE_UNIT_DATA_DIR/bare.code"
            for id in $(relation-ids db); do
              for unit in $(relation-list -r "$id"); do
                echo "$id $unit $(relation-get -r "$id" host "$unit")" >> "$ENSEMBLE_UNIT_DATA_DIR/named.txt"
              done
            done
            """);

        var result = await RunHookAsync("upgrade-formula", Session(null, "upgrade-formula"));

        Assert.True(result.Succeeded, result.Describe());
        Assert.Equal("relation=unset id=unset remote=unset\n", Read("env.txt"));
        Assert.Equal("1", Read("bare.code").Trim());
        Assert.Equal("", Read("bare.out"));
        Assert.Equal("relation-get: this hook (upgrade-formula) runs outside a relation; name one with -r ID (relation-ids NAME lists them).\n", Read("bare.err"));
        Assert.Equal("db:3 mysql/0 10.0.0.9\ndb:7 reports/2 10.0.0.12\ndb:7 reports/10 \n", Read("named.txt"));
    }

    [Fact]
    public async Task A_failing_hooks_exit_code_and_its_pending_writes_reach_the_agent_for_it_to_discard()
    {
        WriteHook("db-relation-joined", """
            relation-set ready=yes
            relation-set "bad key=1"
            exit $?
            """);
        var session = Session(new RelationHookScope(3, "db", "mysql/0"), "db-relation-joined");

        var result = await RunHookAsync("db-relation-joined", session);

        Assert.Equal(2, result.ExitCode);
        Assert.False(result.Succeeded);
        Assert.Equal(new Dictionary<string, string?> { ["ready"] = "yes" }, session.PendingSettings[3]);
        Assert.Contains("relation-set: 'bad key' in 'bad key=1' is not a settings key", File.ReadAllText(scratch.Combine("units", "wordpress-0", "unit.log")));
    }

    [Fact]
    public async Task A_tool_with_a_token_the_agent_never_gave_or_no_agent_at_all_is_refused()
    {
        var session = Session(new RelationHookScope(3, "db", "mysql/0"), "db-relation-changed");
        var token = server.Register(session);

        var asProcess = new List<double>();
        for (var call = 0; call < 3; call++)
        {
            var timer = Stopwatch.StartNew();
            var ok = await RunToolAsync("relation-get", new Dictionary<string, string?> { [HookTools.SocketVariable] = server.SocketPath, [HookTools.TokenVariable] = token }, "host");
            asProcess.Add(timer.Elapsed.TotalMilliseconds);
            Assert.Equal((0, "10.0.0.9\n", ""), ok);
        }
        var inProcess = Stopwatch.StartNew();
        HookToolWire.Call(server.SocketPath, new HookToolRequest(token, "relation-get", ["host"]));
        inProcess.Stop();
        output.WriteLine($"hook tool round trip: {string.Join(" / ", asProcess.Select(ms => $"{ms:0}"))} ms as a process (wrapper + ensemble hook-tool; first call cold), " +
                         $"{inProcess.Elapsed.TotalMilliseconds:0.0} ms over the socket alone");

        var stranger = await RunToolAsync("relation-set", new Dictionary<string, string?> { [HookTools.SocketVariable] = server.SocketPath, [HookTools.TokenVariable] = new string('a', 64) }, "x=1");
        Assert.Equal((1, "", "hook tools work only while their hook runs; relation-set was called outside one.\n"), stranger);

        var noAgent = await RunToolAsync("relation-get", new Dictionary<string, string?>(), "host");
        Assert.Equal((1, "", "relation-get is a hook tool: run it from a hook (ENSEMBLE_AGENT_SOCKET is not set).\n"), noAgent);

        var agentGone = await RunToolAsync("config-get", new Dictionary<string, string?> { [HookTools.SocketVariable] = scratch.Combine("agent", "gone.socket"), [HookTools.TokenVariable] = token });
        Assert.Equal(1, agentGone.Exit);
        Assert.StartsWith($"config-get: the unit agent does not answer on {scratch.Combine("agent", "gone.socket")}", agentGone.Stderr);
        Assert.Empty(session.PendingSettings);
    }

    [Fact]
    public async Task Ensemble_hook_tool_without_a_tool_is_a_usage_error()
    {
        var start = new ProcessStartInfo(HookTools.DefaultClientCommand(typeof(EnsembleCli).Assembly.Location)[0]) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in HookTools.DefaultClientCommand(typeof(EnsembleCli).Assembly.Location).Skip(1).Append(HookTools.ClientVerb)) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = await process.StandardError.ReadToEndAsync().WaitAsync(Deadline);
        await process.WaitForExitAsync().WaitAsync(Deadline);

        Assert.Equal(2, process.ExitCode);
        Assert.StartsWith("ensemble: hook-tool needs the name of a hook tool (relation-get, relation-set", stderr);
    }

    [Fact]
    public void The_default_client_is_the_ensemble_dll_beside_the_program_run_by_the_dotnet_host()
    {
        // Where the tool package puts the node program, and where this test project's build puts ensemble.dll.
        var command = HookTools.DefaultClientCommand();

        Assert.Equal([typeof(EnsembleCli).Assembly.Location], command.Skip(1));
        Assert.Equal("dotnet", Path.GetFileNameWithoutExtension(command[0]));
        var missing = Assert.Throws<FileNotFoundException>(() => HookTools.DefaultClientCommand(scratch.Combine("nowhere", "ensemble.dll")));
        Assert.Contains("so hooks would have no hook tools; install the tool again", missing.Message);
    }

    [Fact]
    public async Task The_tool_wrappers_are_executable_and_pass_every_argument_through_a_quoted_client()
    {
        // A stand-in client in a directory whose name needs quoting, printing the arguments it gets.
        var odd = scratch.Combine("it's a dir");
        Directory.CreateDirectory(odd);
        var client = Path.Combine(odd, "client");
        File.WriteAllText(client, "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n");
        File.SetUnixFileMode(client, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var quoted = scratch.Combine("quoted tools");
        HookTools.WriteToolsDirectory(quoted, client);

        foreach (var tool in HookTools.Names)
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(Path.Combine(quoted, tool)));
        var start = new ProcessStartInfo(Path.Combine(quoted, "relation-set")) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-r", "db:3", "a=two words", "b=", "c=$HOME;`x`" }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var printed = await process.StandardOutput.ReadToEndAsync().WaitAsync(Deadline);
        await process.WaitForExitAsync().WaitAsync(Deadline);

        Assert.Equal("[hook-tool]\n[relation-set]\n[-r]\n[db:3]\n[a=two words]\n[b=]\n[c=$HOME;`x`]\n", printed);
    }
}
