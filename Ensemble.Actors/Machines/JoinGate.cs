using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using static Ensemble.Machines.MachineReplies;
using static Ensemble.Machines.MachineRequests;

namespace Ensemble.Machines;

/// <summary>The controller refused to admit this node; nothing was joined.</summary>
public sealed class JoinRefusedException(string reason) : Exception(reason);

/// <summary>No controller answered the join request in time.</summary>
public sealed class ControllerUnreachableException(string message) : Exception(message);

/// <summary>
/// An agent node's side of the join gate: before its node joins the cluster, it presents its machine and token
/// to the controllers' machine registry through their receptionists (as the CLI reaches the controller), and
/// learns what to join (seed nodes) and where the topology is (ZooKeeper servers, root, environment).
/// </summary>
public static class JoinGate
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(10);

    /// <summary>The receptionist of a controller at HOST:PORT.</summary>
    public static ActorPath Receptionist(string systemName, string hostAndPort) =>
        ActorPath.Parse($"akka.tcp://{systemName}@{hostAndPort}/system/receptionist");

    /// <summary>
    /// Asks until the node is admitted (returned) or refused (<see cref="JoinRefusedException"/>). While no
    /// controller answers it asks again, backing off up to 10 s; after <paramref name="giveUpAfter"/> (null: never)
    /// it throws <see cref="ControllerUnreachableException"/>.
    /// </summary>
    public static async Task<MachineAdmitted> AdmitAsync(ActorSystem system, IReadOnlyList<string> controllers, JoinMachine request,
        TimeSpan? giveUpAfter, Action<string> say, CancellationToken cancel)
    {
        var contacts = controllers.Select(c => Receptionist(system.Name, c)).ToImmutableHashSet();
        var client = system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system).WithInitialContacts(contacts)),
            "join-gate-" + Guid.NewGuid().ToString("N")[..8]);
        var started = DateTime.UtcNow;
        var wait = TimeSpan.FromSeconds(1);
        var attempt = 0;
        try
        {
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                attempt++;
                string why;
                try
                {
                    var reply = await client.Ask<object>(new ClusterClient.Send(MachineRegistry.Path, request), AskTimeout, cancel);
                    switch (reply)
                    {
                        case MachineAdmitted admitted:
                            return admitted;
                        case JoinRefused refused:
                            throw new JoinRefusedException(refused.Reason);
                        case MachineRejected rejected:
                            why = rejected.Reason;
                            break;
                        default:
                            why = $"it answered {reply.GetType().Name}";
                            break;
                    }
                }
                catch (AskTimeoutException)
                {
                    why = $"no answer within {AskTimeout.TotalSeconds:0} s";
                }
                catch (Exception ex) when (ex is not JoinRefusedException && ex is not OperationCanceledException)
                {
                    // A failure answer travels as a sentence (WireFailure); anything else is the same: ask again.
                    why = ex.GetBaseException().Message;
                }
                var waited = DateTime.UtcNow - started;
                if (giveUpAfter is { } limit && waited >= limit)
                    throw new ControllerUnreachableException(
                        $"no controller at {string.Join(", ", controllers)} admitted machine '{request.Machine}' within {limit.TotalSeconds:0} s ({why}); " +
                        "check the address (the controller's --public-host, else its --host, and --port) and that this host can reach it");
                if (attempt == 1 || attempt % 6 == 0)
                    say($"waiting for a controller at {string.Join(", ", controllers)} to admit machine '{request.Machine}' ({why}); asking again");
                await Task.Delay(wait, cancel);
                wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, MaxWait.Ticks));
            }
        }
        finally
        {
            system.Stop(client);
        }
    }
}
