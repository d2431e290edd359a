using System.CommandLine;
using System.CommandLine.Parsing;
using Ensemble.Topology;

namespace Ensemble.Cli.Commands;

/// <summary>What the verbs share: the environment option, argument checks, and reaching a running environment.</summary>
public static class CommandSupport
{
    public static EnvironmentHome Home { get; } = EnvironmentHome.FromEnvironment();

    /// <summary>-e ENV, accepted by every verb (before or after it).</summary>
    public static readonly Option<string?> EnvironmentOption = CreateEnvironmentOption();

    private static Option<string?> CreateEnvironmentOption()
    {
        var option = new Option<string?>("--environment", "-e")
        {
            Description = "The environment to use (default: ENSEMBLE_ENVIRONMENT, else the last bootstrapped, else 'local').",
            HelpName = "ENV",
            Recursive = true,
        };
        option.CompletionSources.Add(_ => Home.Names());
        return option;
    }

    public static string EnvironmentName(ParseResult parsed, string? given = null)
    {
        var option = parsed.GetValue(EnvironmentOption);
        if (given is not null && option is not null && given != option)
            throw new CliException(ExitCodes.Usage, $"two environments given ('{given}' and -e '{option}'); name one.");
        return Home.Resolve(given ?? option);
    }

    /// <summary>
    /// Runs <paramref name="run"/> against the chosen environment: a local one once its node is known to run; a
    /// connected one is alive when it answers (its process is on another machine).
    /// </summary>
    public static async Task<int> WithClientAsync(ParseResult parsed, Func<ControllerClient, Task<int>> run)
    {
        var record = Home.Require(EnvironmentName(parsed));
        if (record.IsLocal && !NodeProcess.IsAlive(record.Pid)) throw new CliException(ExitCodes.Unavailable, ControllerClient.NotRunningMessage(record));
        await using var client = new ControllerClient(record);
        return await run(client);
    }

    /// <summary>--format table|json|yaml, as status and health take it: tables for people, the documented schemas for programs.</summary>
    public static Option<string> FormatOption()
    {
        var format = new Option<string>("--format")
        {
            Description = "table for people; json or yaml (the schema of docs/cli.md) for programs.",
            DefaultValueFactory = _ => "table",
            HelpName = "table|json|yaml",
        };
        format.AcceptOnlyFromAmong("table", "json", "yaml");
        return format;
    }

    /// <summary>A whole number option of at least <paramref name="minimum"/>; anything else is a usage error naming the option.</summary>
    public static Option<int?> Count(string name, string description, int minimum, params string[] aliases)
    {
        var option = new Option<int?>(name, aliases) { Description = description, HelpName = "N" };
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= minimum) return n;
            var typed = (result.Parent as OptionResult)?.IdentifierToken?.Value ?? name;
            result.AddError($"'{typed}' takes a whole number of at least {minimum}, not '{text}'");
            return null;
        };
        return option;
    }

    /// <summary>A machine name as the controller accepts it; anything else is a usage error naming the rule.</summary>
    public static string MachineName(string machine, string what = "machine") =>
        Machines.MachineNames.IsValid(machine) ? machine
            : throw new CliException(ExitCodes.Usage, $"'{machine}' is not a {what} name; use {Machines.MachineNames.Rule}.");

    /// <summary>
    /// The text of a file the operator named (<paramref name="what"/>, e.g. "config file"), or not found (3) with one
    /// sentence: <paramref name="whenMissing"/> says what to pass instead, <paramref name="whenUnreadable"/> how to fix it.
    /// </summary>
    public static string ReadNamedFile(string fullPath, string what, string whenMissing, string whenUnreadable)
    {
        try { return File.ReadAllText(fullPath); }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CliException(ExitCodes.NotFound, $"{what} {fullPath} does not exist; {whenMissing}.");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.NotFound, $"{what} {fullPath} cannot be read ({ex.Message.TrimEnd('.')}); {whenUnreadable}.");
        }
    }

    public static string UnitName(string unit) =>
        UnitNames.IsValid(unit) ? unit : throw new CliException(ExitCodes.Usage, $"'{unit}' is not a unit name; units are named <service>/<n>, e.g. wordpress/0.");

    public static string Repository(string directory)
    {
        var full = Path.GetFullPath(directory);
        return Directory.Exists(full) ? full
            : throw new CliException(ExitCodes.NotFound, $"repository directory {full} does not exist; pass an existing directory with --repository.");
    }
}
