using Ensemble.Formulas;
using Ensemble.Services;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli;

/// <summary>How an upgrade the command followed ended: the units that did not reach the target, if any.</summary>
public sealed record UpgradeOutcome(FormulaId Target, IReadOnlyList<string> Units, IReadOnlyList<string> Missed);

/// <summary>
/// Follows one upgrade run by what the controller pushes: a <see cref="WatchUpgrade"/> subscription answered
/// with the whole per-unit view, then each unit's steps and the end of the run. Nothing is polled. Replies reach
/// the command through a tunnel the receptionist closes after a while without traffic, so the subscription is
/// renewed every few seconds; each renewal brings the whole view again, so a dropped push is never lost.
/// </summary>
public static class UpgradeWatch
{
    private static readonly TimeSpan Renew = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(30);

    public static async Task<UpgradeOutcome> FollowAsync(ControllerClient client, UpgradeStarted started, Action<UpgradeView> show)
    {
        var service = started.Service;
        var view = new UpgradeView(started.From, started.To, false,
            started.Units.Select(u => new UnitUpgradeState(u, UpgradeViews.Queued)).ToList());
        show(view);
        using var subscription = client.Subscribe();
        var heard = DateTime.UtcNow;
        while (true)
        {
            subscription.Send(new WatchUpgrade(service));
            var renewAt = DateTime.UtcNow + Renew;
            while (DateTime.UtcNow < renewAt)
            {
                var message = await subscription.ReceiveAsync(renewAt - DateTime.UtcNow);
                if (message is null) break;
                heard = DateTime.UtcNow;
                switch (message)
                {
                    case UpgradeStatus { View: { } snapshot } when snapshot.To == started.To && (snapshot.Finished || snapshot.Units.Count > 0):
                        view = Ours(snapshot, started);
                        show(view);
                        if (view.Finished) return Outcome(view, started);
                        break;
                    case UpgradeStatus { Running: false }:
                    case UpgradeStatus { View: { } other } when other.To != started.To:
                        // Our run is over and the controller no longer holds its view (it restarted in between).
                        return await OutcomeFromStatusAsync(client, started);
                    case UnitUpgradeProgressed progressed when progressed.Service == service && started.Units.Contains(progressed.Unit):
                        view = UpgradeViews.Apply(view, progressed);
                        show(view);
                        break;
                    case UpgradeFinished finished when finished.Service == service && finished.To == started.To:
                        view = Ours(UpgradeViews.Apply(view, finished), started);
                        show(view);
                        return Outcome(view, started);
                    case CommandRejected rejected:
                        throw ControllerClient.Rejected(rejected);
                }
            }
            if (DateTime.UtcNow - heard > Silence)
            {
                var environment = client.Environment;
                throw new CliException(ExitCodes.Unavailable, !environment.IsLocal || NodeProcess.IsAlive(environment.Pid)
                    ? $"stopped following the upgrade of '{service}': environment '{environment.Name}' has not answered for {Silence.TotalSeconds:0} s; the upgrade goes on in the environment, see 'ensemble status {service}'."
                    : $"stopped following the upgrade of '{service}': {ControllerClient.NotRunningMessage(environment).TrimEnd('.')}; the upgrade goes on when it is back.");
            }
        }
    }

    /// <summary>The view restricted to the units this command started, in their order.</summary>
    private static UpgradeView Ours(UpgradeView view, UpgradeStarted started)
    {
        var byUnit = view.Units.ToDictionary(u => u.Unit);
        return view with
        {
            Units = started.Units.Select(u => byUnit.GetValueOrDefault(u) ?? new UnitUpgradeState(u, UpgradeViews.Queued)).ToList(),
        };
    }

    private static UpgradeOutcome Outcome(UpgradeView view, UpgradeStarted started) =>
        new(started.To, started.Units, view.Units.Where(u => u.State != UpgradeViews.Upgraded).Select(u => u.Unit).ToList());

    private static async Task<UpgradeOutcome> OutcomeFromStatusAsync(ControllerClient client, UpgradeStarted started)
    {
        var status = await client.StatusAsync([started.Service]);
        var units = status.Services.GetValueOrDefault(started.Service)?.Units ?? new Dictionary<string, EnvironmentReplies.UnitStatus>();
        var target = started.To.ToString();
        var missed = started.Units
            .Where(u => units.GetValueOrDefault(u) is not { } s || s.Formula != target || s.State != Units.UnitPhase.Running || s.Upgrading)
            .ToList();
        return new UpgradeOutcome(started.To, started.Units, missed);
    }
}
