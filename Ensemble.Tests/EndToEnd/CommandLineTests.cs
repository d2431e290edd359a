using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.EndToEnd;

/// <summary>The installed command's own surface, no environment needed: version, help, typos, usage errors, completion.</summary>
public sealed class CommandLineTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ensemble-cli-").FullName;
    private EnsembleCommand Ensemble => new(Path.Combine(_root, "home"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.False(result.HasStackTrace, result.ToString());
        return result;
    }

    private async Task<string> Refused(int exitCode, params string[] args)
    {
        var result = await Run(args);
        Assert.Equal(exitCode, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, result.ToString());
        Assert.StartsWith("ensemble: ", lines[0]);
        Assert.Equal("", result.Stdout);
        return lines[0];
    }

    [Fact]
    public async Task Version_and_help_answer_with_exit_0()
    {
        var version = await Run("--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", version.Stdout.Trim());

        var help = await Run("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var verb in new[] { "bootstrap", "restart-environment", "destroy-environment", "deploy", "add-unit", "remove-unit",
                     "destroy-service", "status", "upgrade-formula", "resolved", "log", "completion" })
            Assert.Contains(verb, help.Stdout);

        var bare = await Run();
        Assert.Equal(2, bare.ExitCode);
        Assert.Contains("upgrade-formula", bare.Stderr);
    }

    [Fact]
    public async Task Typos_and_bad_usage_get_one_sentence_with_a_suggestion_and_exit_2()
    {
        Assert.Contains("'stauts' is not a command (did you mean 'status'?)", await Refused(2, "stauts"));
        Assert.Contains("'upgrade-fromula' is not a command (did you mean 'upgrade-formula'?)", await Refused(2, "upgrade-fromula"));
        Assert.Contains("'--fromat' is not an option of 'ensemble status' (did you mean '--format'?)", await Refused(2, "status", "--fromat", "json"));
        Assert.Contains("'--bogus' is not an option of 'ensemble status'", await Refused(2, "status", "--bogus"));
        Assert.Contains("'--format' takes 'table', 'json' or 'yaml', not 'xml'", await Refused(2, "status", "--format", "xml"));
        Assert.Contains("'-n' takes a whole number of at least 1, not 'x'", await Refused(2, "deploy", "-n", "x", "hello"));
        Assert.Contains("'-n' takes a whole number of at least 1, not '0'", await Refused(2, "add-unit", "-n0", "hello"));
        Assert.Contains("'ensemble deploy' needs <formula>", await Refused(2, "deploy"));
        Assert.Contains("'ensemble log' does not take 'b/1'", await Refused(2, "log", "a/0", "b/1"));
        Assert.Contains("'hello' is not a unit name", await Refused(2, "remove-unit", "hello/0", "hello"));
        Assert.Contains("'Hello' is neither a service nor a unit name", await Refused(2, "status", "Hello"));
        Assert.Contains("pass --local", await Refused(2, "bootstrap"));
    }

    [Fact]
    public async Task Verbs_that_take_an_environment_accept_e_as_their_help_says()
    {
        var help = await Run("destroy-environment", "--help");
        Assert.Contains("-e, --environment", help.Stdout);
        Assert.Contains("environment 'nowhere' is not bootstrapped", await Refused(7, "destroy-environment", "-e", "nowhere"));
        Assert.Contains("environment 'nowhere' is not bootstrapped", await Refused(7, "restart-environment", "-e", "nowhere"));
        Assert.Contains("two environments given", await Refused(2, "destroy-environment", "here", "-e", "there"));
        // -e before the verb works too, and `--` ends the options.
        Assert.Contains("environment 'nowhere' is not bootstrapped", await Refused(7, "-e", "nowhere", "status", "--", "hello"));
    }

    [Fact]
    public async Task The_suggest_directive_completes_verbs_options_values_and_environment_names()
    {
        Directory.CreateDirectory(Ensemble.EnvironmentDirectory("staging"));
        async Task<string[]> Complete(string line) =>
            (await Run($"[suggest:{line.Length}]", line)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Contains("status", await Complete("ensemble sta"));
        Assert.Contains("upgrade-formula", await Complete("ensemble upg"));
        Assert.Contains("--max-parallel", await Complete("ensemble upgrade-formula --"));
        Assert.Equal(["json", "table", "yaml"], await Complete("ensemble status --format "));
        Assert.Contains("staging", await Complete("ensemble status -e "));
    }

    [Fact]
    public async Task The_bash_completion_script_completes_in_a_real_bash()
    {
        var script = await Run("completion", "bash");
        Assert.Equal(0, script.ExitCode);
        Directory.CreateDirectory(Ensemble.EnvironmentDirectory("staging"));
        // What a user's shell does on TAB: the completion function with the line typed so far.
        var test = $$"""
            export PATH='{{InstalledTool.ToolPath}}':"$PATH" ENSEMBLE_HOME='{{Ensemble.Home}}'
            eval "$(ensemble completion bash)"
            complete -p ensemble
            COMP_LINE='ensemble resta'; COMP_POINT=14; COMP_WORDS=(ensemble resta); COMP_CWORD=1; _ensemble_complete
            echo "verbs: ${COMPREPLY[*]}"
            COMP_LINE='ensemble status --format j'; COMP_POINT=26; COMP_WORDS=(ensemble status --format j); COMP_CWORD=3; _ensemble_complete
            echo "formats: ${COMPREPLY[*]}"
            COMP_LINE='ensemble destroy-environment st'; COMP_POINT=31; COMP_WORDS=(ensemble destroy-environment st); COMP_CWORD=2; _ensemble_complete
            echo "environments: ${COMPREPLY[*]}"
            """;
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(test);
        using var bash = Process.Start(start)!;
        var stdout = await bash.StandardOutput.ReadToEndAsync();
        var stderr = await bash.StandardError.ReadToEndAsync();
        await bash.WaitForExitAsync();
        output.WriteLine(stdout + stderr);
        Assert.True(bash.ExitCode == 0, stderr);
        Assert.Contains("complete -o default -F _ensemble_complete ensemble", stdout);
        Assert.Contains("verbs: restart-environment", stdout);
        Assert.Contains("formats: json", stdout);
        Assert.Contains("environments: staging", stdout);
    }
}
