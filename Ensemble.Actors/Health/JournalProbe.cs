using System.Diagnostics;
using Akka.Actor;
using Akka.Persistence;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// Reaches the journal the way every coordinator does, whatever the plugin (SQLite, PostgreSQL): a persistent actor
/// that never writes recovers (the plugin reads its highest sequence number and replays nothing) and stops. The
/// recovery finishing within the deadline is the journal answering.
/// </summary>
public sealed class JournalProbe : UntypedPersistentActor
{
    private readonly string _persistenceId;
    private readonly TaskCompletionSource<string?> _done;

    public JournalProbe(string persistenceId, TaskCompletionSource<string?> done)
    {
        _persistenceId = persistenceId;
        _done = done;
    }

    public override string PersistenceId => _persistenceId;

    protected override void OnRecover(object message)
    {
        if (message is not RecoveryCompleted) return;
        _done.TrySetResult(null);
        Context.Stop(Self);
    }

    protected override void OnCommand(object message) { }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _done.TrySetResult(reason.GetBaseException().Message);
        base.OnRecoveryFailure(reason, message);
    }

    protected override void PostStop() => _done.TrySetResult("the journal probe stopped before its recovery finished");

    /// <summary>Starts a probe as a child of the calling actor (call on its thread) and returns what it found.</summary>
    public static Task<JournalHealth> Start(IUntypedActorContext context, string persistenceId, TimeSpan deadline)
    {
        var done = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = Stopwatch.StartNew();
        var probe = context.ActorOf(Props.Create(() => new JournalProbe(persistenceId, done)), $"journal-probe-{Guid.NewGuid():N}");
        return WaitAsync();

        async Task<JournalHealth> WaitAsync()
        {
            try
            {
                var error = await done.Task.WaitAsync(deadline);
                return new JournalHealth(error is null, error, watch.Elapsed.TotalMilliseconds);
            }
            catch (TimeoutException)
            {
                probe.Tell(PoisonPill.Instance);
                return new JournalHealth(false, $"a recovery did not finish within {deadline.TotalSeconds:0.#} s", watch.Elapsed.TotalMilliseconds);
            }
        }
    }
}
