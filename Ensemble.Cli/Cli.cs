using System.Diagnostics;
using System.Text.Json;
using Ensemble.Formulas;
using Ensemble.Services;
using Ensemble.Topology;
using static Ensemble.Services.ServiceProtocol;
using UnitProtocol = Ensemble.Units.UnitProtocol;

namespace Ensemble.Cli;

/// <summary>The `ensemble` command: verbs that talk to an environment's controller through ClusterClient.</summary>
public static class Cli
{
    private sealed record Verb(string Usage, string Help, string[] ValueOptions, string[] Flags, Func<ParsedArgs, Task<int>> Run);

    private static readonly EnvironmentHome Home = EnvironmentHome.FromEnvironment();

    private static readonly Dictionary<string, Verb> Verbs = new()
    {
        ["bootstrap"] = new("bootstrap --local [--name ENV] [--zookeeper HOST:PORT[,...]]",
            "Start a local environment — one node with the controller and agent roles, a SQLite journal on free loopback ports, and the embedded store (or the ZooKeeper ensemble given) — in the background, and return when it answers.",
            ["--name", "-e", "--zookeeper"], ["--local"], BootstrapAsync),
        ["destroy-environment"] = new("destroy-environment [ENV]",
            "Stop the environment's node (units finish the step they are in) and remove its files; no process is left behind.",
            [], [], DestroyEnvironmentAsync),
        ["deploy"] = new("deploy [--repository DIR] [-n N] [--wait] <formula> [<service>]",
            "Deploy the latest revision of <formula> from the local repository DIR (default: the current directory) as <service> (default: the formula's name) with N units (default 1). --wait returns when every unit runs (exit 0) or one failed (exit 1).",
            ["--repository", "-n", "--num-units", "-e"], ["--wait"], DeployAsync),
        ["add-unit"] = new("add-unit [-n N] <service>", "Add N units (default 1) to <service>.",
            ["-n", "--num-units", "-e"], [], AddUnitAsync),
        ["remove-unit"] = new("remove-unit <unit>", "Stop <unit> (its stop hook runs) and remove it with its files.",
            ["-e"], [], RemoveUnitAsync),
        ["destroy-service"] = new("destroy-service <service>", "Stop and remove every unit of <service>, then the service.",
            ["-e"], [], DestroyServiceAsync),
        ["status"] = new("status [--format table|json]",
            "Show each service's formula and, per unit, its formula revision, lifecycle state, pending upgrade and error cause.",
            ["--format", "-e"], [], StatusAsync),
        ["upgrade-formula"] = new("upgrade-formula [--repository DIR] [--revision N] [--units U,...] [--max-parallel N] [--dry-run] [--wait] <service>",
            "Upgrade <service> to a strictly higher revision of its formula (or exactly --revision N) from its repository or DIR. A formula edited in place without a new revision is deployed as the next revision. --wait shows each unit's progress and exits 0 only when every unit reached the new revision.",
            ["--repository", "--revision", "--units", "--max-parallel", "-e"], ["--dry-run", "--wait"], UpgradeFormulaAsync),
        ["resolved"] = new("resolved [--retry] <unit>",
            "Take <unit> out of its error state: go on as if the failed step had succeeded, or with --retry run it again.",
            ["-e"], ["--retry"], ResolvedAsync),
        ["log"] = new("log <unit>", "Show the output of <unit>'s hooks, with timestamps.", ["-e"], [], LogAsync),
    };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            PrintOverview(args.Length == 0 ? Console.Error : Console.Out);
            return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Ok;
        }
        if (!Verbs.TryGetValue(args[0], out var verb))
        {
            Console.Error.WriteLine($"ensemble: '{args[0]}' is not a command; run 'ensemble --help' for the list.");
            return ExitCodes.Usage;
        }
        if (args.Skip(1).Any(a => a is "--help" or "-h"))
        {
            Console.WriteLine($"usage: ensemble {verb.Usage}\n\n{verb.Help}\n\n-e ENV selects an environment (default: ENSEMBLE_ENVIRONMENT, else the last bootstrapped).\nExit codes: see 'ensemble --help'.");
            return ExitCodes.Ok;
        }
        try
        {
            var parsed = ParsedArgs.Parse(args[0], args[1..], verb.ValueOptions.ToHashSet(), verb.Flags.ToHashSet());
            return await verb.Run(parsed);
        }
        catch (CliException ex)
        {
            Console.Error.WriteLine($"ensemble: {ex.Message}");
            return ex.ExitCode;
        }
    }

    private static void PrintOverview(TextWriter writer)
    {
        writer.WriteLine("usage: ensemble <command> [options]   (ensemble <command> --help for more)\n");
        foreach (var (name, verb) in Verbs) writer.WriteLine($"  {verb.Usage}");
        writer.WriteLine("""

            Environments live under ENSEMBLE_HOME (default ~/.ensemble).
            Exit codes: 0 done; 1 done but not everywhere (a unit failed); 2 bad usage; 3 not found;
            4 malformed formula; 5 no newer revision; 6 conflict (already running or existing);
            7 environment not bootstrapped, not reachable or unable to do it now.
            """);
    }

    // ---- environments ----

    private static async Task<int> BootstrapAsync(ParsedArgs args)
    {
        if (!args.Has("--local"))
            throw new CliException(ExitCodes.Usage, "only local environments can be bootstrapped yet; pass --local.");
        var name = args.Value("--name", "-e") ?? "local";
        if (!IsPlainName(name))
            throw new CliException(ExitCodes.Usage, $"'{name}' is not a valid environment name; use letters, digits and '-'.");
        if (Home.Find(name) is { } existing)
        {
            if (IsAlive(existing.Pid))
                throw new CliException(ExitCodes.Conflict, $"environment '{name}' is already running (pid {existing.Pid}); destroy it first with 'ensemble destroy-environment {name}'.");
            Home.Remove(name);
        }

        var directory = Home.EnvironmentDirectory(name);
        Directory.CreateDirectory(directory);
        var dataDirectory = Path.Combine(directory, "data");
        var log = Path.Combine(directory, "agent.log");
        var ready = Path.Combine(directory, "ready.json");
        var pid = StartAgent(name, dataDirectory, log, ready, args.Value("--zookeeper"));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(ready))
        {
            if (!IsAlive(pid))
                throw new CliException(ExitCodes.Unavailable, $"the node of environment '{name}' exited while starting; see {log}.");
            if (DateTime.UtcNow > deadline)
            {
                Kill(pid);
                throw new CliException(ExitCodes.Unavailable, $"the node of environment '{name}' did not start within a minute; see {log}.");
            }
            await Task.Delay(50);
        }
        using var readyJson = JsonDocument.Parse(await File.ReadAllTextAsync(ready));
        var record = new EnvironmentRecord(name, readyJson.RootElement.GetProperty("contact").GetString()!, pid, dataDirectory, log);
        Home.Save(record);

        await using var client = new ControllerClient(record);
        var pong = await client.AskAsync(new EnvironmentProtocol.Ping(), TimeSpan.FromSeconds(30));
        if (pong is not EnvironmentProtocol.Pong)
            throw new CliException(ExitCodes.Unavailable, $"environment '{name}' started but its controller does not answer; see {log}.");
        Console.WriteLine($"environment '{name}' is running (pid {pid}, {record.Contact}); stop it with 'ensemble destroy-environment {name}'.");
        return ExitCodes.Ok;
    }

    /// <summary>Starts Ensemble.Agent from beside this program as a session of its own, output to its log.</summary>
    private static int StartAgent(string name, string dataDirectory, string log, string ready, string? zookeeper)
    {
        var agent = Path.Combine(AppContext.BaseDirectory, "Ensemble.Agent.dll");
        if (!File.Exists(agent))
            throw new CliException(ExitCodes.Unavailable, $"Ensemble.Agent.dll is missing beside the ensemble command ({AppContext.BaseDirectory}); build the solution again.");
        var dotnet = System.Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
        string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        // setsid: the node outlives this command and the terminal it was typed in.
        var command = $"exec setsid {Quote(dotnet)} {Quote(agent)} --data-dir {Quote(dataDirectory)} --environment {Quote(name)} " +
                      $"--roles controller,agent --machine machine-0 --port 0 --ready-file {Quote(ready)} " +
                      (zookeeper is null ? "" : $"--zookeeper {Quote(zookeeper)} ") + $">> {Quote(log)} 2>&1 < /dev/null";
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = Process.Start(start) ?? throw new CliException(ExitCodes.Unavailable, "could not start the environment's node.");
        return process.Id;
    }

    private static async Task<int> DestroyEnvironmentAsync(ParsedArgs args)
    {
        if (args.Positionals.Count > 1) throw new CliException(ExitCodes.Usage, "destroy-environment takes at most one environment name.");
        var name = Home.Resolve(args.Positionals.FirstOrDefault());
        var record = Home.Require(name);
        if (IsAlive(record.Pid))
        {
            // SIGTERM runs the node's coordinated shutdown: units finish their current step first.
            Signal(record.Pid, "TERM");
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(6);
            while (IsAlive(record.Pid) && DateTime.UtcNow < deadline) await Task.Delay(50);
            if (IsAlive(record.Pid)) Kill(record.Pid);
        }
        Home.Remove(name);
        Console.WriteLine($"environment '{name}' destroyed.");
        return ExitCodes.Ok;
    }

    // ---- services and units ----

    private static async Task<int> DeployAsync(ParsedArgs args)
    {
        if (args.Positionals.Count is < 1 or > 2) throw new CliException(ExitCodes.Usage, "deploy needs <formula> and optionally <service>; see 'ensemble deploy --help'.");
        var formula = args.Positionals[0];
        var service = args.Positionals.Count > 1 ? args.Positionals[1] : formula;
        var units = args.Int("deploy", "-n", "--num-units") ?? 1;
        var repository = RepositoryArgument(args.Value("--repository") ?? ".");
        return await WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(new DeployService(service, formula, repository, units), TimeSpan.FromSeconds(60));
            if (reply is not ServiceProtocol.ServiceDeployed deployed) return Rejected(reply);
            Console.WriteLine($"deployed {deployed.Formula} as service '{deployed.Service}' with units {string.Join(", ", deployed.Units)}");
            return args.Has("--wait") ? await WaitForUnitsAsync(client, deployed.Service, deployed.Units) : ExitCodes.Ok;
        });
    }

    private static Task<int> AddUnitAsync(ParsedArgs args)
    {
        var service = Single(args, "add-unit", "<service>");
        var count = args.Int("add-unit", "-n", "--num-units") ?? 1;
        return WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(new AddUnits(service, count));
            if (reply is not UnitsAdded added) return Rejected(reply);
            Console.WriteLine($"added {string.Join(", ", added.Units)}");
            return ExitCodes.Ok;
        });
    }

    private static Task<int> RemoveUnitAsync(ParsedArgs args)
    {
        var unit = UnitArgument(Single(args, "remove-unit", "<unit>"));
        return WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(new DestroyUnit(UnitNames.ServiceOf(unit), unit), TimeSpan.FromMinutes(7));
            if (reply is not ServiceProtocol.UnitDestroyed) return Rejected(reply);
            Console.WriteLine($"removed {unit}");
            return ExitCodes.Ok;
        });
    }

    private static Task<int> DestroyServiceAsync(ParsedArgs args)
    {
        var service = Single(args, "destroy-service", "<service>");
        return WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(new DestroyService(service), TimeSpan.FromMinutes(10));
            if (reply is not ServiceDestroyed) return Rejected(reply);
            Console.WriteLine($"destroyed service '{service}'");
            return ExitCodes.Ok;
        });
    }

    private static Task<int> StatusAsync(ParsedArgs args)
    {
        var format = args.Value("--format") ?? "table";
        if (format is not ("table" or "json")) throw new CliException(ExitCodes.Usage, $"--format takes 'table' or 'json', not '{format}'.");
        if (args.Positionals.Count > 0) throw new CliException(ExitCodes.Usage, "status takes no arguments; see 'ensemble status --help'.");
        return WithClientAsync(args, async client =>
        {
            var status = await client.StatusAsync();
            Console.Write(format == "json" ? StatusFormat.Json(status) : StatusFormat.Table(status));
            return ExitCodes.Ok;
        });
    }

    private static Task<int> UpgradeFormulaAsync(ParsedArgs args)
    {
        var service = Single(args, "upgrade-formula", "<service>");
        var repository = args.Value("--repository") is { } dir ? RepositoryArgument(dir) : null;
        var units = args.Value("--units")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(UnitArgument).ToList();
        var maxParallel = args.Int("upgrade-formula", "--max-parallel");
        var request = new UpgradeFormula(service, repository, args.Int("upgrade-formula", "--revision"), units, maxParallel, args.Has("--dry-run"));
        return WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(request, TimeSpan.FromSeconds(60));
            switch (reply)
            {
                case UpgradePlanned plan:
                    Console.WriteLine($"would upgrade '{service}' from {plan.From} to {plan.To}{(plan.RevisionBumped ? " (edited in place: next revision)" : "")} on {string.Join(", ", plan.Units)}");
                    return ExitCodes.Ok;
                case UpgradeStarted started:
                    Console.WriteLine($"upgrading '{service}' from {started.From} to {started.To}{(started.RevisionBumped ? " (edited in place: next revision)" : "")} on {string.Join(", ", started.Units)}");
                    return args.Has("--wait") ? await UpgradeProgress.WaitAsync(client, service, started) : ExitCodes.Ok;
                default:
                    return Rejected(reply);
            }
        });
    }

    private static Task<int> ResolvedAsync(ParsedArgs args)
    {
        var unit = UnitArgument(Single(args, "resolved", "<unit>"));
        return WithClientAsync(args, async client =>
        {
            var reply = await client.AskAsync(new ResolveUnit(UnitNames.ServiceOf(unit), unit, args.Has("--retry")));
            switch (reply)
            {
                case UnitProtocol.UnitResolved resolved:
                    Console.WriteLine($"{unit} resolved{(args.Has("--retry") ? ", retrying" : "")}: now {resolved.State}");
                    return ExitCodes.Ok;
                case UnitProtocol.UnitCommandRejected rejected:
                    throw new CliException(ExitCodes.Conflict, rejected.Reason + ".");
                default:
                    return Rejected(reply);
            }
        });
    }

    private static Task<int> LogAsync(ParsedArgs args)
    {
        var unit = UnitArgument(Single(args, "log", "<unit>"));
        var record = Home.Require(Home.Resolve(args.Value("-e")));
        return WithClientAsync(args, async client =>
        {
            var status = await client.StatusAsync();
            if (!status.Services.TryGetValue(UnitNames.ServiceOf(unit), out var service) || !service.Units.TryGetValue(unit, out var unitStatus))
                throw new CliException(ExitCodes.NotFound, $"unit '{unit}' does not exist; see 'ensemble status'.");
            // A local environment keeps every machine's files in its data directory.
            var log = Path.Combine(record.DataDirectory, "machines", unitStatus.Machine, "units", UnitNames.DirectoryName(unit), "unit.log");
            if (File.Exists(log)) Console.Write(await File.ReadAllTextAsync(log));
            return ExitCodes.Ok;
        });
    }

    /// <summary>Waits until every unit runs or one lands in an error state, printing each change.</summary>
    private static async Task<int> WaitForUnitsAsync(ControllerClient client, string service, IReadOnlyList<string> units)
    {
        var last = new Dictionary<string, string>();
        while (true)
        {
            var status = await client.StatusAsync();
            var current = status.Services.GetValueOrDefault(service)?.Units ?? new Dictionary<string, EnvironmentProtocol.UnitStatus>();
            foreach (var unit in units)
            {
                var state = current.GetValueOrDefault(unit) is { } s ? s.Error is null ? s.State : $"{s.State}: {s.Error}" : "removed";
                if (last.GetValueOrDefault(unit) != state) Console.WriteLine($"  {unit,-16} {state}");
                last[unit] = state;
            }
            var failed = units.Where(u => current.GetValueOrDefault(u) is not { } s || s.State.EndsWith("_error", StringComparison.Ordinal)).ToList();
            if (failed.Count > 0)
            {
                Console.WriteLine($"{string.Join(", ", failed)} failed; see 'ensemble log <unit>', then 'ensemble resolved --retry <unit>'");
                return ExitCodes.Failed;
            }
            if (units.All(u => current[u].State == UnitStates.Running)) return ExitCodes.Ok;
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }

    // ---- helpers ----

    private static async Task<int> WithClientAsync(ParsedArgs args, Func<ControllerClient, Task<int>> run)
    {
        var record = Home.Require(Home.Resolve(args.Value("-e")));
        if (!IsAlive(record.Pid))
            throw new CliException(ExitCodes.Unavailable, $"environment '{record.Name}' is not running (its node, pid {record.Pid}, has exited; see {record.Log}); bootstrap it again.");
        await using var client = new ControllerClient(record);
        return await run(client);
    }

    private static int Rejected(object reply) => reply switch
    {
        CommandRejected r => throw new CliException(ExitCodes.For(r.Kind), r.Reason.TrimEnd('.') + "."),
        UnitProtocol.UnitCommandRejected r => throw new CliException(ExitCodes.Conflict, r.Reason.TrimEnd('.') + "."),
        _ => throw new CliException(ExitCodes.Failed, $"unexpected answer from the controller: {reply.GetType().Name}"),
    };

    private static string Single(ParsedArgs args, string verb, string what) =>
        args.Positionals.Count == 1 ? args.Positionals[0]
            : throw new CliException(ExitCodes.Usage, $"{verb} needs exactly one {what}; see 'ensemble {verb} --help'.");

    private static string UnitArgument(string unit) =>
        UnitNames.IsValid(unit) ? unit : throw new CliException(ExitCodes.Usage, $"'{unit}' is not a unit name; units are named <service>/<n>, e.g. wordpress/0.");

    private static string RepositoryArgument(string directory)
    {
        var full = Path.GetFullPath(directory);
        return Directory.Exists(full) ? full
            : throw new CliException(ExitCodes.NotFound, $"repository directory {full} does not exist; pass an existing directory with --repository.");
    }

    private static bool IsPlainName(string name) => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    private static bool IsAlive(int pid)
    {
        if (!File.Exists($"/proc/{pid}/stat")) return false;
        // A zombie has exited; its parent simply has not reaped it yet.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
        return state != 'Z';
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid}") { UseShellExecute = false });
        kill?.WaitForExit();
    }

    private static void Kill(int pid) => Signal(pid, "KILL");
}
