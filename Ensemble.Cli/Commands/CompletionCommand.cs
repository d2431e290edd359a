using System.CommandLine;

namespace Ensemble.Cli.Commands;

/// <summary>
/// completion bash|zsh: prints the shell code that completes ensemble's commands, options and values. The
/// shell asks the command itself through System.CommandLine's [suggest] directive, so completion always
/// matches the installed version.
/// </summary>
public static class CompletionCommand
{
    private const string Bash = """
        # ensemble completion for bash: eval "$(ensemble completion bash)", e.g. in ~/.bashrc
        _ensemble_complete() {
          local IFS=$'\n'
          COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _ensemble_complete ensemble

        """;

    public static Command Build()
    {
        var shell = new Argument<string>("shell") { Description = "bash, or zsh (which runs the bash code through bashcompinit)." };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var command = new Command("completion", "Print the shell code that completes ensemble's commands and options; e.g. eval \"$(ensemble completion bash)\" in ~/.bashrc.")
        {
            shell,
        };
        command.SetAction(parsed =>
        {
            if (parsed.GetValue(shell) == "zsh") Console.Write("autoload -U +X bashcompinit && bashcompinit\n");
            Console.Write(Bash);
            return ExitCodes.Ok;
        });
        return command;
    }
}
