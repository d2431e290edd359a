using System.CommandLine;
using Ensemble.Topology;
using static Ensemble.Cli.Commands.CommandSupport;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;
using UnitReplies = Ensemble.Units.UnitReplies;
using UnitRequests = Ensemble.Units.UnitRequests;

namespace Ensemble.Cli.Commands;

/// <summary>resolved and log: commands about units, and the rule for a command given several units.</summary>
public static class UnitCommands
{
    public static Command Resolved()
    {
        var retry = new Option<bool>("--retry") { Description = "Run the failed step again instead of going on as if it had succeeded." };
        var units = new Argument<string[]>("unit") { Description = "Units in an error state, e.g. wordpress/0.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("resolved",
            "Take each <unit> out of its error state: go on as if the failed step had succeeded, or with --retry run it again.")
        {
            retry, units,
        };
        command.SetAction(parsed =>
        {
            var names = parsed.GetValue(units)!.Select(UnitName).Distinct().ToList();
            var again = parsed.GetValue(retry);
            return WithClientAsync(parsed, client => ForEachUnitAsync(client, names, "resolved", async unit =>
            {
                var reply = await client.AskAsync(new ResolveUnit(UnitNames.ServiceOf(unit), unit, again));
                return reply is UnitReplies.UnitResolved resolved
                    ? $"{unit} resolved{(again ? ", retrying" : "")}: now {resolved.State}"
                    : throw ControllerClient.Rejected(reply);
            }));
        });
        return command;
    }

    public static Command Log()
    {
        var unit = new Argument<string>("unit") { Description = "The unit, e.g. wordpress/0." };
        var command = new Command("log", "Show the output of <unit>'s hooks, with timestamps.") { unit };
        command.SetAction(parsed =>
        {
            var name = UnitName(parsed.GetValue(unit)!);
            return WithClientAsync(parsed, async client =>
            {
                var status = await client.StatusAsync([name]);
                if (!status.Services.TryGetValue(UnitNames.ServiceOf(name), out var service) || !service.Units.TryGetValue(name, out var unitStatus))
                    throw new CliException(ExitCodes.NotFound, $"unit '{name}' does not exist; see 'ensemble status'.");
                // A local environment keeps every machine's files in its data directory; a connected one keeps them on its machines.
                if (client.Environment.DataDirectory is not { } dataDirectory)
                    throw new CliException(ExitCodes.Unavailable,
                        $"'ensemble log' cannot fetch a unit's log from another machine yet; on machine '{unitStatus.Machine}' it is " +
                        $"<its --data-dir>/machines/{unitStatus.Machine}/units/{UnitNames.DirectoryName(name)}/unit.log.");
                var log = Path.Combine(dataDirectory, "machines", unitStatus.Machine, "units", UnitNames.DirectoryName(name), "unit.log");
                if (File.Exists(log)) Console.Write(await File.ReadAllTextAsync(log));
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>
    /// Runs <paramref name="act"/> for each unit, after checking they all exist (a unit that does not changes
    /// nothing at all). One unit: its own outcome. Several: each success on stdout, and one sentence naming
    /// every unit that failed; the exit code is theirs when all failed alike, else 1.
    /// </summary>
    public static async Task<int> ForEachUnitAsync(ControllerClient client, IReadOnlyList<string> units, string verb, Func<string, Task<string>> act)
    {
        if (units.Count > 1)
        {
            var status = await client.StatusAsync(units);
            var missing = units.Where(u => status.Services.GetValueOrDefault(UnitNames.ServiceOf(u))?.Units.ContainsKey(u) != true).ToList();
            if (missing.Count > 0)
                throw new CliException(ExitCodes.NotFound,
                    $"{(missing.Count == 1 ? "unit" : "units")} {string.Join(", ", missing)} {(missing.Count == 1 ? "does" : "do")} not exist, so nothing was {verb}; see 'ensemble status'.");
        }
        var failures = new List<(string Unit, CliException Error)>();
        foreach (var unit in units)
        {
            try { Console.WriteLine(await act(unit)); }
            catch (CliException ex) when (units.Count > 1)
            {
                failures.Add((unit, ex));
            }
        }
        if (failures.Count == 0) return ExitCodes.Ok;
        var code = failures.Count == units.Count && failures.Select(f => f.Error.ExitCode).Distinct().Count() == 1 ? failures[0].Error.ExitCode : ExitCodes.Failed;
        throw new CliException(code,
            $"{failures.Count} of {units.Count} units were not {verb}: {string.Join("; ", failures.Select(f => $"{f.Unit}: {f.Error.Message.TrimEnd('.')}"))}.");
    }
}
