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
                if (!existing.IsLocal)
                    throw new CliException(ExitCodes.Conflict,
                        $"environment '{environment}' is the name of an environment that runs elsewhere (connected with 'ensemble connect'); pick another name, or forget it here with 'ensemble disconnect {environment}'.");
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
            var record = RequireLocal(environment, "restart");
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
            var record = RequireLocal(environment, "destroy");
            // SIGTERM runs the node's coordinated shutdown: units finish their current step first.
            await NodeProcess.StopAsync(record.Pid, NodeProcess.StopGrace);
            Home.Remove(environment);
            Console.WriteLine($"environment '{environment}' destroyed.");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// connect NAME FILE|ADDR:PORT[,ADDR:PORT…]: an environment whose controller runs on another host. It is saved
    /// only once it answers, so a record here always names an environment that answered at least once.
    /// </summary>
    public static Command Connect()
    {
        var name = new Argument<string>("NAME") { Description = "What to call the environment on this machine (-e NAME)." };
        var target = new Argument<string>("FILE|ADDR:PORT")
        {
            Description = "The connection file its controller wrote in its data directory (connection.json), or the ADDR:PORT[,ADDR:PORT…] its controllers advertise.",
        };
        var command = new Command("connect",
            "Use an environment whose controller runs on another host: check that it answers, then remember it under NAME (in ENSEMBLE_HOME) " +
            "and make it the current environment. Nothing changes in the environment.")
        {
            name, target,
        };
        command.SetAction(async parsed =>
        {
            var environment = parsed.GetValue(name)!;
            if (parsed.GetValue(EnvironmentOption) is { } option && option != environment)
                throw new CliException(ExitCodes.Usage, $"two environments given ('{environment}' and -e '{option}'); name one.");
            if (!IsPlainName(environment))
                throw new CliException(ExitCodes.Usage, $"'{environment}' is not a valid environment name; use letters, digits and '-'.");
            if (Home.Find(environment) is { IsLocal: true })
                throw new CliException(ExitCodes.Conflict,
                    $"environment '{environment}' was bootstrapped on this machine; pick another name for the one you connect to.");
            var controllers = ContactPointsOf(parsed.GetValue(target)!);
            var record = new EnvironmentRecord(environment, EnvironmentRecord.ReceptionistAt(controllers[0]), 0, null, null, null, controllers);
            object reply;
            await using (var client = new ControllerClient(record))
            {
                try
                {
                    reply = await client.AskAsync(new Ensemble.Services.EnvironmentRequests.Ping(), ConnectDeadline);
                }
                catch (CliException ex) when (ex.ExitCode == ExitCodes.Unavailable)
                {
                    throw new CliException(ExitCodes.Unavailable,
                        $"no controller answered at {string.Join(", ", controllers)} within {ConnectDeadline.TotalSeconds:0} s; check the address " +
                        "(the controller's --public-host, else its --host, and its --port, as its connection.json says) and that this machine can reach it; nothing was saved.");
                }
            }
            if (reply is not Ensemble.Services.EnvironmentReplies.Pong pong) throw ControllerClient.Rejected(reply);
            Home.Save(record);
            Console.WriteLine($"connected to environment '{pong.Environment}' at {string.Join(", ", controllers)} as '{environment}'; it is now the current environment.");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static readonly TimeSpan ConnectDeadline = TimeSpan.FromSeconds(15);

    /// <summary>The controllers named by a connection file (or a directory holding one) or by ADDR:PORT[,ADDR:PORT…].</summary>
    private static IReadOnlyList<string> ContactPointsOf(string target)
    {
        var file = Directory.Exists(target) ? Path.Combine(target, Ensemble.Hosting.ConnectionFile.FileName) : target;
        if (File.Exists(file))
        {
            Ensemble.Hosting.ConnectionFile connection;
            try { connection = Ensemble.Hosting.ConnectionFile.Read(file); }
            catch (FormatException ex)
            {
                throw new CliException(ExitCodes.Usage,
                    $"{Path.GetFullPath(file)} is not a connection file: {ex.Message}; pass the connection.json the controller wrote in its data directory.");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.NotFound, $"connection file {Path.GetFullPath(file)} cannot be read ({ex.Message}); make it readable.");
            }
            foreach (var controller in connection.Controllers)
                if (Ensemble.Hosting.LocalAddress.ParseHostAndPort(controller) is null)
                    throw new CliException(ExitCodes.Usage,
                        $"{Path.GetFullPath(file)} is not a connection file: '{controller}' is not ADDR:PORT; pass the connection.json the controller wrote in its data directory.");
            return connection.Controllers;
        }
        var points = target.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (points.Length > 0 && points.All(p => Ensemble.Hosting.LocalAddress.ParseHostAndPort(p) is not null)) return points;
        if (Directory.Exists(target))
            throw new CliException(ExitCodes.NotFound, $"{Path.GetFullPath(target)} holds no {Ensemble.Hosting.ConnectionFile.FileName}; pass the controller's connection file or its ADDR:PORT.");
        if (target.Contains('/') || target.EndsWith(".json", StringComparison.Ordinal))
            throw new CliException(ExitCodes.NotFound, $"connection file {Path.GetFullPath(target)} does not exist; pass the connection.json the controller wrote, or its ADDR:PORT.");
        throw new CliException(ExitCodes.Usage,
            $"'{target}' is neither a connection file nor ADDR:PORT[,ADDR:PORT…]; pass the connection.json the controller wrote in its data directory, or the address and port it advertises.");
    }

    public static Command Disconnect()
    {
        var environmentArgument = EnvironmentArgument();
        var command = new Command("disconnect",
            "Forget an environment connected to with 'ensemble connect'; it goes on running, and nothing in it changes.")
        {
            environmentArgument,
        };
        command.SetAction(parsed =>
        {
            var environment = EnvironmentName(parsed, parsed.GetValue(environmentArgument));
            var record = Home.Require(environment);
            if (record.IsLocal)
                throw new CliException(ExitCodes.Conflict,
                    $"environment '{environment}' runs on this machine (it was bootstrapped here); stop and remove it with 'ensemble destroy-environment {environment}'.");
            Home.Remove(environment);
            Console.WriteLine($"forgot environment '{environment}'; it goes on running where it runs.");
            return Task.FromResult(ExitCodes.Ok);
        });
        return command;
    }

    /// <summary>An environment whose node runs on this machine; one connected to is restarted or destroyed on its own host.</summary>
    private static EnvironmentRecord RequireLocal(string environment, string verb)
    {
        var record = Home.Require(environment);
        if (!record.IsLocal)
            throw new CliException(ExitCodes.Conflict,
                $"environment '{environment}' runs elsewhere (connected with 'ensemble connect'), so it cannot be {verb}ed from here; do it on its controller's host, " +
                $"or forget it here with 'ensemble disconnect {environment}'.");
        return record;
    }

    private static Argument<string?> EnvironmentArgument()
    {
        var argument = new Argument<string?>("ENV") { Description = "The environment (default: -e, else the current one).", Arity = ArgumentArity.ZeroOrOne };
        argument.CompletionSources.Add(_ => Home.Names());
        return argument;
    }

    private static bool IsPlainName(string name) => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');
}
