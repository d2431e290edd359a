using Akka.Actor;
using Ensemble.Environments;
using Ensemble.Services;
using Ensemble.Topology;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Cli;

/// <summary>
/// `ensemble demo`: the whole upgrade cycle in one process on the embedded defaults — deploy the example
/// formula with three units, upgrade it to its next revision with progress shown, print the status.
/// The cluster hosts and the remaining verbs come with the hosts-and-CLI work.
/// </summary>
public static class DemoCommand
{
    public const int ExitOk = 0;
    public const int ExitUpgradeFailed = 1;
    public const int ExitUsage = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine("""
                usage: ensemble demo [--examples DIR] [--units N]

                Runs a local environment in this process (embedded store, SQLite journal, one machine),
                deploys the example formula 'hello' from DIR/formulas with N units (default 3), upgrades it
                to the next revision from DIR/upgrades while showing each unit's progress, and prints the
                status. DIR defaults to ./examples. The environment's files are kept and their place printed.
                """);
            return args.Length == 0 ? ExitUsage : ExitOk;
        }
        if (args[0] != "demo")
        {
            Console.Error.WriteLine($"ensemble: unknown command '{args[0]}'; run 'ensemble --help' for the commands there are.");
            return ExitUsage;
        }

        var examples = "examples";
        var units = 3;
        for (var i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--examples" when i + 1 < args.Length: examples = args[++i]; break;
                case "--units" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n > 0: units = n; i++; break;
                default:
                    Console.Error.WriteLine($"ensemble demo: unexpected argument '{args[i]}'; see 'ensemble demo --help'.");
                    return ExitUsage;
            }
        }
        var formulas = Path.GetFullPath(Path.Combine(examples, "formulas"));
        var upgrades = Path.GetFullPath(Path.Combine(examples, "upgrades"));
        if (!Directory.Exists(formulas) || !Directory.Exists(upgrades))
        {
            Console.Error.WriteLine($"ensemble demo: example repositories not found under {Path.GetFullPath(examples)}; run from the repository root or pass --examples DIR.");
            return ExitUsage;
        }

        var directory = LocalEnvironment.NewDirectory();
        await using var environment = await LocalEnvironment.StartAsync(new LocalEnvironmentOptions
        {
            Directory = directory,
            SystemConfig = Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING"),
        });
        Console.WriteLine($"environment started in {directory}");

        var deployed = await environment.AskAsync<object>(new DeployService("hello", "hello", formulas, units));
        if (deployed is not ServiceProtocol.ServiceDeployed d) return Fail(deployed);
        Console.WriteLine($"deployed {d.Formula} as {string.Join(", ", d.Units)}");
        await LocalEnvironment.WaitUntilAsync(async () =>
            (await environment.Topology.ListUnitsAsync("hello")).All(u => u.State == UnitStates.Running),
            TimeSpan.FromMinutes(5), "the units to start");
        await PrintStatusAsync(environment.Topology);

        var finished = new TaskCompletionSource<UpgradeFinished>();
        var progress = environment.System.ActorOf(Props.Create(() => new ProgressPrinter(finished)));
        environment.Services.Tell(new WatchUpgrade("hello"), progress);
        var started = await environment.AskAsync<object>(new UpgradeFormula("hello", Repository: upgrades));
        if (started is not UpgradeStarted s) return Fail(started);
        Console.WriteLine($"upgrading hello from {s.From} to {s.To} on {s.Units.Count} units");
        var result = await finished.Task.WaitAsync(TimeSpan.FromMinutes(10));

        await PrintStatusAsync(environment.Topology);
        Console.WriteLine($"unit logs and data are under {Path.Combine(directory, "machines")}");
        return result.Failed.Count == 0 && result.NotStarted.Count == 0 ? ExitOk : ExitUpgradeFailed;
    }

    private static int Fail(object reply)
    {
        Console.Error.WriteLine(reply is CommandRejected r ? $"ensemble: {r.Reason}" : $"ensemble: unexpected reply {reply}");
        return ExitUpgradeFailed;
    }

    private static async Task PrintStatusAsync(TopologyStore topology)
    {
        foreach (var service in await topology.ListServicesAsync())
        {
            var record = await topology.GetServiceAsync(service);
            Console.WriteLine($"{service}: {record?.Formula}");
            foreach (var unit in await topology.ListUnitsAsync(service))
            {
                var upgrading = await topology.GetUpgradeFlagAsync(unit.Name) is not null;
                Console.WriteLine($"  {unit.Name,-12} {unit.Formula,-18} {unit.State,-14} {(upgrading ? "upgrading" : "")}{unit.Error}");
            }
        }
    }

    private sealed class ProgressPrinter : ReceiveActor
    {
        public ProgressPrinter(TaskCompletionSource<UpgradeFinished> finished)
        {
            Receive<UnitUpgradeProgressed>(p => Console.WriteLine($"  {p.Unit,-12} {p.State}"));
            Receive<UpgradeFinished>(f =>
            {
                Console.WriteLine($"upgrade to {f.To} finished: {f.Succeeded.Count} upgraded, {f.Failed.Count} failed, {f.NotStarted.Count} not started");
                finished.TrySetResult(f);
            });
            ReceiveAny(_ => { });
        }
    }
}
