using System.CommandLine;
using static Ensemble.Cli.Commands.CommandSupport;

namespace Ensemble.Cli.Commands;

/// <summary>
/// bootstrap, restart-environment and destroy-environment: an environment's node as a process. Only
/// destroy-environment ever deletes an environment's files; bootstrap refuses an environment that exists.
/// </summary>
public static class EnvironmentCommands
{
    public static Command Bootstrap()
    {
        var local = new Option<bool>("--local") { Description = "Run the environment on this machine (the only kind there is yet)." };
        var name = new Option<string?>("--name") { Description = "The environment's name (default: -e, else 'local').", HelpName = "ENV" };
        var zookeeper = new Option<string?>("--zookeeper")
        {
            Description = "Keep the topology in this ZooKeeper ensemble instead of the embedded store.",
            HelpName = "HOST:PORT[,...]",
        };
        var command = new Command("bootstrap",
            "Start a local environment — one node with the controller and agent roles, a SQLite journal on free loopback ports, " +
            "and the embedded store (or the ZooKeeper ensemble given) — in the background, and return when it answers. " +
            "An environment that exists is never replaced: bring a stopped one back with restart-environment.")
        {
            local, name, zookeeper,
        };
        command.SetAction(async parsed =>
        {
            if (!parsed.GetValue(local))
                throw new CliException(ExitCodes.Usage, "only local environments can be bootstrapped yet; pass --local.");
            var environment = parsed.GetValue(name) is { } given ? EnvironmentName(parsed, given) : parsed.GetValue(EnvironmentOption) ?? "local";
            if (!IsPlainName(environment))
                throw new CliException(ExitCodes.Usage, $"'{environment}' is not a valid environment name; use letters, digits and '-'.");
            if (Home.Find(environment) is { } existing)
            {
                if (NodeProcess.IsAlive(existing.Pid))
                    throw new CliException(ExitCodes.Conflict,
                        $"environment '{environment}' is already running (pid {existing.Pid}); use it, or remove it for good with 'ensemble destroy-environment {environment}'.");
                throw new CliException(ExitCodes.Conflict,
                    $"environment '{environment}' already exists but its node is not running; bring it back with its services and data with " +
                    $"'ensemble restart-environment {environment}', or remove it for good with 'ensemble destroy-environment {environment}'.");
            }
            var record = await NodeProcess.LaunchAsync(Home, environment, parsed.GetValue(zookeeper));
            Console.WriteLine($"environment '{environment}' is running (pid {record.Pid}, {record.Contact}); stop it with 'ensemble destroy-environment {environment}'.");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command RestartEnvironment()
    {
        var environmentArgument = EnvironmentArgument();
        var command = new Command("restart-environment",
            "Start the environment's node again on its data, with the flags it was bootstrapped with; a running node is first " +
            "stopped as destroy-environment stops it (units finish the step they are in). Services, units, their data and " +
            "the journal are kept, and interrupted upgrades go on. The way back after a crash or a reboot.")
        {
            environmentArgument,
        };
        command.SetAction(async parsed =>
        {
            var environment = EnvironmentName(parsed, parsed.GetValue(environmentArgument));
            var record = Home.Require(environment);
            if (NodeProcess.IsAlive(record.Pid))
            {
                Console.WriteLine($"stopping the node of '{environment}' (pid {record.Pid}); units finish the step they are in...");
                await NodeProcess.StopAsync(record.Pid, NodeProcess.StopGrace);
            }
            var restarted = await NodeProcess.LaunchAsync(Home, environment, record.ZooKeeper);
            Console.WriteLine($"environment '{environment}' is running again (pid {restarted.Pid}, {restarted.Contact}) with its services and units.");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command DestroyEnvironment()
    {
        var environmentArgument = EnvironmentArgument();
        var command = new Command("destroy-environment",
            "Stop the environment's node (units finish the step they are in) and remove its files — its services, units and " +
            "their data — for good; no process is left behind.")
        {
            environmentArgument,
        };
        command.SetAction(async parsed =>
        {
            var environment = EnvironmentName(parsed, parsed.GetValue(environmentArgument));
            var record = Home.Require(environment);
            // SIGTERM runs the node's coordinated shutdown: units finish their current step first.
            await NodeProcess.StopAsync(record.Pid, NodeProcess.StopGrace);
            Home.Remove(environment);
            Console.WriteLine($"environment '{environment}' destroyed.");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Argument<string?> EnvironmentArgument()
    {
        var argument = new Argument<string?>("ENV") { Description = "The environment (default: -e, else the current one).", Arity = ArgumentArity.ZeroOrOne };
        argument.CompletionSources.Add(_ => Home.Names());
        return argument;
    }

    private static bool IsPlainName(string name) => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');
}
