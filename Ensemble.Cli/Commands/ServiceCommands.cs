using Ensemble.Units;
using System.CommandLine;
using Ensemble.Services;
using Ensemble.Topology;
using static Ensemble.Cli.Commands.CommandSupport;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli.Commands;

/// <summary>deploy, add-unit, remove-unit and destroy-service: placing and removing a service's units.</summary>
public static class ServiceCommands
{
    public static Command Deploy()
    {
        var repository = new Option<string>("--repository") { Description = "The formula repository on this machine (default: the current directory); the formula is packed here and uploaded.", HelpName = "DIR" };
        var units = Count("--num-units", "How many units (default 1).", 1, "-n");
        var wait = new Option<bool>("--wait") { Description = "Return when every unit runs (exit 0) or one failed (exit 1)." };
        var formula = new Argument<string>("formula") { Description = "The formula's name in the repository." };
        var service = new Argument<string?>("service") { Description = "The service's name (default: the formula's).", Arity = ArgumentArity.ZeroOrOne };
        var to = ToOption();
        var config = new Option<string?>("--config") { Description = "A YAML file of settings, '<service>: {option: value}' (Juju's format); checked before anything is deployed.", HelpName = "FILE" };
        var command = new Command("deploy",
            "Deploy the latest revision of <formula> from the repository DIR on this machine as <service> with N units; the formula is uploaded to the environment.")
        {
            repository, units, wait, to, config, formula, service,
        };
        command.SetAction(parsed =>
        {
            var formulaName = parsed.GetValue(formula)!;
            var serviceName = parsed.GetValue(service) ?? formulaName;
            var directory = Repository(parsed.GetValue(repository) ?? ".");
            var count = parsed.GetValue(units) ?? 1;
            var machine = parsed.GetValue(to) is { } named ? MachineName(named) : null;
            var settings = parsed.GetValue(config) is { } file ? ConfigCommands.ReadConfigFile(file, serviceName) : null;
            return WithClientAsync(parsed, async client =>
            {
                // The repository is read here, on the operator's machine; the controller gets the uploaded bundle.
                var reply = await new ServiceClient(client).DeployAsync(serviceName, formulaName, directory, count, machine, settings);
                if (reply is not ServiceDeployed deployed) throw ControllerClient.Rejected(reply);
                Console.WriteLine($"deployed {deployed.Formula} as service '{deployed.Service}' with units {string.Join(", ", deployed.Units)}");
                return parsed.GetValue(wait) ? await WaitForUnitsAsync(client, deployed.Service, deployed.Units) : ExitCodes.Ok;
            });
        });
        return command;
    }

    public static Command AddUnit()
    {
        var units = Count("--num-units", "How many units (default 1).", 1, "-n");
        var service = new Argument<string>("service");
        var to = ToOption();
        var command = new Command("add-unit", "Add N units to <service>.") { units, to, service };
        command.SetAction(parsed =>
        {
            var machine = parsed.GetValue(to) is { } given ? MachineName(given) : null;
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new AddUnits(parsed.GetValue(service)!, parsed.GetValue(units) ?? 1, machine));
                if (reply is not UnitsAdded added) throw ControllerClient.Rejected(reply);
                Console.WriteLine($"added {string.Join(", ", added.Units)}");
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>--to MACHINE: every new unit on that machine (which must be started) instead of spread over the started machines.</summary>
    private static Option<string?> ToOption() => new("--to")
    {
        Description = "Place every new unit on this machine (its agent must be started); default: spread over the started machines.",
        HelpName = "MACHINE",
    };

    public static Command RemoveUnit()
    {
        var units = new Argument<string[]>("unit") { Description = "Units to remove, e.g. wordpress/3.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("remove-unit", "Stop each <unit> (its stop hook runs) and remove it with its files.") { units };
        command.SetAction(parsed =>
        {
            var names = parsed.GetValue(units)!.Select(UnitName).Distinct().ToList();
            return WithClientAsync(parsed, client => UnitCommands.ForEachUnitAsync(client, names, "removed", async unit =>
            {
                var reply = await client.AskAsync(new DestroyUnit(UnitNames.ServiceOf(unit), unit), TimeSpan.FromMinutes(7));
                return reply switch
                {
                    ServiceReplies.UnitDestroyed { WaitingForMachine: { } machine } =>
                        $"{unit} will be removed when machine {machine} is back (its agent is down): its stop hook runs and its files go then; 'ensemble status' shows it as dying until then",
                    ServiceReplies.UnitDestroyed => $"removed {unit}",
                    _ => throw ControllerClient.Rejected(reply),
                };
            }));
        });
        return command;
    }

    public static Command DestroyService()
    {
        var service = new Argument<string>("service");
        var command = new Command("destroy-service", "Stop and remove every unit of <service> (as remove-unit), then the service.") { service };
        command.SetAction(parsed => WithClientAsync(parsed, async client =>
        {
            var name = parsed.GetValue(service)!;
            var reply = await client.AskAsync(new DestroyService(name), TimeSpan.FromMinutes(10));
            if (reply is not ServiceDestroyed destroyed) throw ControllerClient.Rejected(reply);
            Console.WriteLine(destroyed.Waiting is { Count: > 0 } waiting
                ? $"destroyed service '{name}'; {string.Join(", ", waiting)} will be removed when {(waiting.Count == 1 ? "its machine is" : "their machines are")} back (their agents are down), and the service with the last of them; 'ensemble status' shows them as dying until then"
                : $"destroyed service '{name}'");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// deploy --wait: until every unit runs or one lands in an error state, printing each change. Units
    /// report their deploy steps to the store only, so this reads the service's status every half second.
    /// </summary>
    private static async Task<int> WaitForUnitsAsync(ControllerClient client, string service, IReadOnlyList<string> units)
    {
        var last = new Dictionary<string, string>();
        while (true)
        {
            var status = await client.StatusAsync([service]);
            var current = status.Services.GetValueOrDefault(service)?.Units ?? new Dictionary<string, EnvironmentReplies.UnitStatus>();
            foreach (var unit in units)
            {
                var state = current.GetValueOrDefault(unit) is { } s ? s.Error is null ? UnitLifecycle.StateName(s.State) : $"{UnitLifecycle.StateName(s.State)}: {s.Error}" : "removed";
                if (last.GetValueOrDefault(unit) != state) Console.WriteLine($"  {unit,-16} {state}");
                last[unit] = state;
            }
            var failed = units.Where(u => current.GetValueOrDefault(u) is not { } s || UnitLifecycle.IsError(s.State)).ToList();
            if (failed.Count > 0)
            {
                Console.WriteLine($"{string.Join(", ", failed)} failed; see 'ensemble log <unit>', then 'ensemble resolved --retry <unit>'");
                return ExitCodes.Failed;
            }
            if (units.All(u => current[u].State == UnitPhase.Running)) return ExitCodes.Ok;
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }
    }
}
