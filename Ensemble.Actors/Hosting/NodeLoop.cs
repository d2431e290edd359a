using Akka.Actor;
using Akka.Configuration;

namespace Ensemble.Hosting;

/// <summary>
/// A node process's life as a sequence of incarnations. When the cluster downs or removes this node (it was cut
/// off, or its controller went away), coordinated shutdown drains its units — each finishes the step it is in —
/// and the loop starts a fresh actor system that asks the join gate again and rejoins once the network allows:
/// no operator restart. It ends when an operator stops the node, or when the first start fails.
/// </summary>
public sealed class NodeLoop(NodeOptions options, Config nodeConfig, Action<string> say)
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>How long the first incarnation may wait for the join gate before the process gives up.</summary>
    public TimeSpan FirstContactTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The incarnation running now, if any.</summary>
    public EnsembleNode? Current { get; private set; }

    /// <summary>
    /// Runs until an operator stops the node (returns) or the first incarnation cannot start (throws; a refused
    /// admission is a <see cref="Machines.JoinRefusedException"/>). <paramref name="up"/> is called for each
    /// incarnation once it is a member with its roles started (true for the first).
    /// </summary>
    public async Task RunAsync(Action<EnsembleNode, bool> up, CancellationToken stop)
    {
        var first = true;
        var backoff = TimeSpan.FromSeconds(1);
        while (!stop.IsCancellationRequested)
        {
            EnsembleNode node;
            try
            {
                node = await EnsembleNode.StartAsync(options, nodeConfig, new NodeStart(say, first ? FirstContactTimeout : null, stop));
            }
            catch (Exception ex) when (!first && !stop.IsCancellationRequested && ex is not Machines.JoinRefusedException)
            {
                say($"could not join again ({ex.GetBaseException().Message}); trying again in {backoff.TotalSeconds:0} s");
                try { await Task.Delay(backoff, stop); }
                catch (OperationCanceledException) { return; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                continue;
            }
            Current = node;
            up(node, first);
            first = false;
            backoff = TimeSpan.FromSeconds(1);
            await node.WhenTerminated;
            var reason = node.ShutdownReason;
            await node.DisposeAsync();
            Current = null;
            if (!EnsembleNode.RejoinsAfter(reason) || stop.IsCancellationRequested) return;
            say($"the cluster {(reason is CoordinatedShutdown.ClusterDowningReason ? "downed" : "removed")} this node; its units finished the step they were in; " +
                "starting again to rejoin");
        }
    }

    /// <summary>Stops the running incarnation as an operator's stop does (units drain), and the loop with it.</summary>
    public void Stop()
    {
        if (Current is { } node) _ = CoordinatedShutdown.Get(node.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
    }
}
