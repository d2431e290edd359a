using System.CommandLine;
using System.Runtime.InteropServices;
using Ensemble.Machines;
using static Ensemble.Cli.Commands.CommandSupport;
using static Ensemble.Machines.MachineReplies;
using static Ensemble.Machines.MachineRequests;

namespace Ensemble.Cli.Commands;

/// <summary>add-machine, remove-machine and node: machines of an environment, and the node program that serves one.</summary>
public static class MachineCommands
{
    public static Command AddMachine()
    {
        var name = new Argument<string?>("NAME") { Description = "The machine's name (default: the next free machine-N).", Arity = ArgumentArity.ZeroOrOne };
        var dataDirectory = new Option<string?>("--data-dir")
        {
            Description = "The data directory the node uses on the new host, put in the printed line (default: /var/lib/ensemble/<machine>).",
            HelpName = "DIR",
        };
        var command = new Command("add-machine",
            "Add a machine to the environment and print the line to run on it (the ensemble command installed there): its node presents " +
            "the join token in that line — shown only now — to the controller, is admitted, and joins the environment's cluster. " +
            "The output is a shell snippet: ssh HOST \"$(ensemble add-machine HOST)\" runs it there.")
        {
            name, dataDirectory,
        };
        command.SetAction(parsed =>
        {
            var machine = parsed.GetValue(name) is { } given ? MachineName(given) : null;
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new MachineRequests.AddMachine(machine), path: MachineRegistry.Path);
                if (reply is not MachineAdded added) throw ControllerClient.Rejected(reply);
                var directory = parsed.GetValue(dataDirectory) ?? $"/var/lib/ensemble/{added.Machine}";
                Console.WriteLine($"# machine '{added.Machine}' added to environment '{added.Environment}'; run this on it (the token is shown only now):");
                Console.WriteLine(JoinLine(added, directory));
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>The command an operator runs on the new host; every word is quoted for a POSIX shell where it needs to be.</summary>
    public static string JoinLine(MachineAdded added, string dataDirectory) => string.Join(' ', new[]
    {
        "ensemble", "node", "--roles", "agent", "--join", string.Join(',', added.Controllers), "--token", added.Token,
        "--machine", added.Machine, "--data-dir", dataDirectory,
    }.Select(Quote));

    private static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:,=@+%".Contains(c)) ? word : "'" + word.Replace("'", "'\\''") + "'";

    public static Command EnableHa()
    {
        var count = new Option<int>("-n", "--controllers")
        {
            Description = "How many controllers the environment should have in all (3, 5 or 7).",
            DefaultValueFactory = _ => 3,
            HelpName = "N",
        };
        var command = new Command("enable-ha",
            "Print the commands that start more controllers, so the environment survives the loss of a controller host. Controllers " +
            "share the environment's ZooKeeper and one PostgreSQL journal (the running controller must have been started with " +
            "--journal); each new one joins the running controllers, and the split brain resolver keeps the side with the majority of " +
            "them. Nothing is changed: run the printed lines on the new controllers' hosts.")
        {
            count,
        };
        command.SetAction(parsed => WithClientAsync(parsed, async client =>
        {
            var reply = await client.AskAsync(new MachineRequests.PlanHa(parsed.GetValue(count)), path: MachineRegistry.Path);
            if (reply is not HaPlan plan) throw ControllerClient.Rejected(reply);
            if (plan.ToStart == 0)
            {
                Console.WriteLine($"# environment '{plan.Environment}' already runs {plan.Controllers.Count} controllers: {string.Join(", ", plan.Controllers)}");
                return ExitCodes.Ok;
            }
            Console.WriteLine($"# environment '{plan.Environment}' runs {plan.Controllers.Count} controller(s); start {plan.ToStart} more, one per host, each with the");
            Console.WriteLine("# journal the running controller uses: set ENSEMBLE_JOURNAL to its connection string there first (a password in PGPASSWORD");
            Console.WriteLine("# or a passfile), and put the host's own address for HOST:");
            foreach (var line in ControllerLines(plan)) Console.WriteLine(line);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The lines that start the controllers a plan asks for; HOST stands for the address each new host binds.</summary>
    public static IEnumerable<string> ControllerLines(HaPlan plan) =>
        Enumerable.Range(1, plan.ToStart).Select(i => string.Join(' ', new[]
        {
            "ensemble", "node", "--roles", "controller", "--environment", plan.Environment, "--zookeeper", plan.ZooKeeper,
            "--root", plan.Root, "--join", string.Join(',', plan.Controllers), "--host", "HOST", "--port", "4711",
            "--data-dir", $"/var/lib/ensemble/controller-{plan.Controllers.Count + i - 1}",
        }.Select(Quote)));

    public static Command RemoveMachine()
    {
        var name = new Argument<string>("NAME") { Description = "The machine; it must host no units." };
        var command = new Command("remove-machine",
            "Remove a machine that hosts no units: its join token is revoked, and its node, if it runs, is put out of the cluster " +
            "and refused when it asks to join again.")
        {
            name,
        };
        command.SetAction(parsed =>
        {
            var machine = MachineName(parsed.GetValue(name)!);
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new MachineRequests.RemoveMachine(machine), path: MachineRegistry.Path);
                if (reply is not MachineRemoved) throw ControllerClient.Rejected(reply);
                Console.WriteLine($"removed machine '{machine}': its token is revoked, and its node, if it runs, is out of the cluster");
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>
    /// `ensemble node ARGS…` is the node program the tool carries (Ensemble.Agent), run in this very process: the
    /// command becomes the node (exec), so its pid, signals and exit code are the node's. Listed here for help and
    /// completion; <see cref="EnsembleCli"/> hands the arguments over before they are parsed.
    /// </summary>
    public static Command Node()
    {
        var arguments = new Argument<string[]>("ARGS") { Description = "The node's options; 'ensemble node --help' lists them.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("node",
            "Run a node of an environment in the foreground — the program add-machine's line starts (Ensemble.Agent, carried by this tool). " +
            "'ensemble node --help' lists its options.")
        {
            arguments,
        };
        command.SetAction(parsed => Exec(parsed.GetValue(arguments) ?? []));
        return command;
    }

    /// <summary>Replaces this process with the node program; returns only when that cannot be done.</summary>
    public static int Exec(IReadOnlyList<string> arguments)
    {
        string agent;
        try { agent = NodeProcess.AgentProgram(); }
        catch (CliException ex)
        {
            Console.Error.WriteLine($"ensemble: {ex.Message}");
            return ex.ExitCode;
        }
        var dotnet = NodeProcess.DotnetHost();
        string?[] argv = [dotnet, agent, .. arguments, null];
        Console.Out.Flush();
        Console.Error.Flush();
        execvp(dotnet, argv);
        Console.Error.WriteLine($"ensemble: could not start the node program ({dotnet} {agent}): {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}; install the tool again.");
        return ExitCodes.Failed;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int execvp(string file, string?[] argv);
}
