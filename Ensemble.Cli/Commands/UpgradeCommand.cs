using System.CommandLine;
using Ensemble.Cli.Output;
using Ensemble.Services;
using static Ensemble.Cli.Commands.CommandSupport;
using Spectre.Console;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli.Commands;

/// <summary>upgrade-formula: start an upgrade, or plan one, and with --wait follow it to its end.</summary>
public static class UpgradeCommand
{
    public static Command Build()
    {
        var repository = new Option<string?>("--repository") { Description = "Take the formula from this repository on this machine (default: the one the service was deployed from); it is uploaded to the environment.", HelpName = "DIR" };
        var revision = Count("--revision", "Upgrade to exactly this revision.", 0);
        var units = new Option<string?>("--units") { Description = "Upgrade only these units (default: all).", HelpName = "U,..." };
        var maxParallel = Count("--max-parallel", "Upgrade at most N units at once (default: all); a failed unit halts the rest.", 1);
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would happen; change nothing." };
        var wait = new Option<bool>("--wait") { Description = "Show each unit's progress until the upgrade ends; exit 0 only if every unit reached the new revision." };
        var service = new Argument<string>("service");
        var command = new Command("upgrade-formula",
            "Upgrade <service> to a strictly higher revision of its formula (or exactly --revision N) from its repository or DIR. " +
            "A formula edited in place without a new revision is deployed as the next revision.")
        {
            repository, revision, units, maxParallel, dryRun, wait, service,
        };
        command.SetAction(parsed =>
        {
            var name = parsed.GetValue(service)!;
            var directory = parsed.GetValue(repository) is { } dir ? Repository(dir) : null;
            var only = parsed.GetValue(units)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(UnitName).ToList();
            return WithClientAsync(parsed, async client =>
            {
                // The repository is read here, on the operator's machine; the controller gets the uploaded bundle.
                var reply = await new ServiceClient(client).UpgradeAsync(name, directory, parsed.GetValue(revision), only,
                    parsed.GetValue(maxParallel), parsed.GetValue(dryRun));
                switch (reply)
                {
                    case UpgradePlanned plan:
                        Say($"would upgrade '{name}' from {plan.From} to {plan.To}{(plan.RevisionBumped ? " (edited in place: next revision)" : "")} on {string.Join(", ", plan.Units)}");
                        return ExitCodes.Ok;
                    case UpgradeStarted started:
                        Say($"upgrading '{name}' from {started.From} to {started.To}{(started.RevisionBumped ? " (edited in place: next revision)" : "")} on {string.Join(", ", started.Units)}");
                        if (started.DroppedOptions is { Count: > 0 } dropped)
                            Say($"dropped options: {string.Join(", ", dropped)} (their values are gone; see 'ensemble get {name}')");
                        if (!parsed.GetValue(wait)) return ExitCodes.Ok;
                        var outcome = await ProgressDisplay.RunAsync(show => UpgradeWatch.FollowAsync(client, started, show));
                        Say(outcome.Missed.Count == 0
                            ? $"all {outcome.Units.Count} units of '{name}' run {outcome.Target}"
                            : $"{outcome.Missed.Count} of {outcome.Units.Count} units did not reach {outcome.Target}: {string.Join(", ", outcome.Missed)}; see 'ensemble status' and 'ensemble log <unit>'");
                        return outcome.Missed.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
                    default:
                        throw ControllerClient.Rejected(reply);
                }
            });
        });
        return command;
    }

    /// <summary>A line of text, wrapped to the terminal's width when there is one.</summary>
    private static void Say(string text)
    {
        if (Terminal.IsInteractive) Terminal.Stdout.WriteLine(text);
        else Console.WriteLine(text);
    }
}
