using System.CommandLine;
using Ensemble.Cli.Commands;

namespace Ensemble.Cli;

/// <summary>
/// The `ensemble` command: its verbs on System.CommandLine, and the one place that turns whatever happens
/// into a documented exit code and at most one `ensemble: ` sentence on stderr.
/// </summary>
public static class EnsembleCli
{
    private const string Overview = """
        Deploy services from formulas as units, and upgrade them unit by unit.

        Environments live under ENSEMBLE_HOME (default ~/.ensemble); -e ENV picks one (else
        ENSEMBLE_ENVIRONMENT, else the last bootstrapped or connected). Exit codes: 0 done; 1 done but not everywhere
        (a unit failed, a record could not be read, a node is unhealthy); 2 bad usage; 3 not found; 4 malformed formula;
        5 no newer revision; 6 conflict (already running or existing); 7 environment not bootstrapped,
        not running, not answering or unable to do it now. See docs/cli.md.
        """;

    /// <summary>Every verb, in the order `ensemble --help` lists them.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand(Overview);
        // -h and --help only: the Windows spellings (/?, /h) would only clutter shell completion here.
        foreach (var help in root.Options.OfType<System.CommandLine.Help.HelpOption>().ToList()) root.Options.Remove(help);
        root.Options.Add(new System.CommandLine.Help.HelpOption("--help", "-h"));
        root.Options.Add(CommandSupport.EnvironmentOption);
        foreach (var command in new[]
        {
            EnvironmentCommands.Bootstrap(), EnvironmentCommands.Connect(), EnvironmentCommands.Disconnect(),
            EnvironmentCommands.RestartEnvironment(), EnvironmentCommands.DestroyEnvironment(),
            MachineCommands.AddMachine(), MachineCommands.RemoveMachine(), MachineCommands.EnableHa(), MachineCommands.Node(),
            ServiceCommands.Deploy(), ServiceCommands.AddUnit(), ServiceCommands.RemoveUnit(), ServiceCommands.DestroyService(),
            RelationCommands.AddRelation(), RelationCommands.RemoveRelation(),
            ConfigCommands.Set(), ConfigCommands.Get(),
            StatusCommand.Build(), HealthCommand.Build(), UpgradeCommand.Build(), UnitCommands.Resolved(), UnitCommands.Log(),
            CompletionCommand.Build(),
        })
            root.Subcommands.Add(command);
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        // Hook tools run this on every call a hook makes: answered before any verb is built.
        if (args.Length > 0 && args[0] == Ensemble.Hooks.Tools.HookTools.ClientVerb) return HookToolCommand.Run(args[1..]);
        var root = Build();
        if (args.Length == 0)
        {
            // Bare `ensemble` is a usage error: the overview goes where errors go.
            root.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = Console.Error });
            return ExitCodes.Usage;
        }
        // The node program takes its own options, which are not ours to parse.
        if (args[0] == "node") return MachineCommands.Exec(args[1..]);
        var parsed = root.Parse(args);
        if (ParseProblems.Describe(parsed) is { } problem)
        {
            Console.Error.WriteLine($"ensemble: {problem}");
            return ExitCodes.Usage;
        }
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                // Ctrl-C ends the command at once; nothing in the environment depends on it.
                ProcessTerminationTimeout = null,
            });
        }
        catch (CliException ex)
        {
            Console.Error.WriteLine($"ensemble: {ex.Message}");
            return ex.ExitCode;
        }
        catch (Exception ex)
        {
            // A bug, not a user error: still one sentence, never a stack trace.
            var cause = ex.GetBaseException();
            Console.Error.WriteLine($"ensemble: unexpected failure ({cause.GetType().Name}): {cause.Message.TrimEnd('.')}; nothing more was done.");
            return ExitCodes.Failed;
        }
    }
}
