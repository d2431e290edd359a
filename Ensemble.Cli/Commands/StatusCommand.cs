using System.CommandLine;
using Ensemble.Cli.Output;
using Ensemble.Services;
using Ensemble.Topology;
using static Ensemble.Cli.Commands.CommandSupport;

namespace Ensemble.Cli.Commands;

/// <summary>status [SERVICE|UNIT…] [--format table|json|yaml].</summary>
public static class StatusCommand
{
    public static Command Build()
    {
        var format = FormatOption();
        var names = new Argument<string[]>("SERVICE|UNIT") { Description = "Show only these services and units.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("status",
            "Show each service's formula and, per unit, its formula revision, lifecycle state, machine, pending upgrade and error cause; " +
            "then each machine: its node's address, its agent's state (started, down or lost) and since when, and its units. " +
            "Exits 1 if some record of the environment could not be read (the rest is shown, and what was left out is named).")
        {
            format, names,
        };
        command.SetAction(parsed =>
        {
            var only = parsed.GetValue(names) is { Length: > 0 } given ? given.Distinct().ToList() : null;
            foreach (var name in only ?? [])
                if (!UnitNames.IsValidServiceName(name) && !UnitNames.IsValid(name))
                    throw new CliException(ExitCodes.Usage, $"'{name}' is neither a service nor a unit name; name services like 'wordpress' and units like 'wordpress/0'.");
            return WithClientAsync(parsed, async client =>
            {
                var status = Filter(await client.StatusAsync(only), only);
                if (status.Controllers is { Count: > 0 } controllers) Home.RememberControllers(client.Environment, controllers.Select(c => c.Address).ToList());
                switch (parsed.GetValue(format))
                {
                    case "json": Console.Write(StatusFormat.Json(status)); break;
                    case "yaml": Console.Write(StatusFormat.Yaml(status)); break;
                    default: StatusFormat.Table(status, Terminal.Stdout); break;
                }
                if (status.Unreadable is { Count: > 0 } unreadable)
                {
                    Console.Error.WriteLine(
                        $"ensemble: {unreadable.Count} {(unreadable.Count == 1 ? "record" : "records")} of environment '{client.Environment.Name}' could not be read and {(unreadable.Count == 1 ? "is" : "are")} left out: " +
                        $"{string.Join("; ", unreadable.Select(r => $"{r.Path} ({r.Reason})"))}; something other than ensemble wrote {(unreadable.Count == 1 ? "it" : "them")}: remove or repair {(unreadable.Count == 1 ? "it" : "them")}.");
                    return ExitCodes.Failed;
                }
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>Keeps the services named and, for unit names, only those units; a name that matches nothing is "not found".</summary>
    private static EnvironmentReplies.Status Filter(EnvironmentReplies.Status status, IReadOnlyList<string>? only)
    {
        if (only is null) return status;
        var missing = only.Where(name => UnitNames.IsValid(name)
            ? status.Services.GetValueOrDefault(UnitNames.ServiceOf(name))?.Units.ContainsKey(name) != true
            : !status.Services.ContainsKey(name)).ToList();
        if (missing.Count > 0)
            throw new CliException(ExitCodes.NotFound,
                $"{string.Join(", ", missing.Select(m => $"'{m}'"))} {(missing.Count == 1 ? "is not a deployed service or unit" : "are not deployed services or units")}; see 'ensemble status' for what there is.");
        var services = new SortedDictionary<string, EnvironmentReplies.ServiceStatus>(StringComparer.Ordinal);
        foreach (var (name, service) in status.Services)
        {
            if (only.Contains(name)) services[name] = service;
            else if (only.Any(u => UnitNames.IsValid(u) && UnitNames.ServiceOf(u) == name))
                services[name] = service with
                {
                    Units = service.Units.Where(u => only.Contains(u.Key))
                        .ToDictionary(u => u.Key, u => u.Value),
                };
        }
        // The machines hosting what is shown, each with only the units shown.
        var shown = services.Values.SelectMany(s => s.Units.Keys).ToHashSet(StringComparer.Ordinal);
        var machines = (status.Machines ?? new Dictionary<string, EnvironmentReplies.MachineStatus>())
            .Select(m => (m.Key, Machine: m.Value with { Units = m.Value.Units.Where(shown.Contains).ToList() }))
            .Where(m => m.Machine.Units.Count > 0)
            .ToDictionary(m => m.Key, m => m.Machine);
        return status with { Services = services, Machines = machines };
    }
}
