using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Akka.Actor;
using Ensemble.Hooks;
using Ensemble.Units;

namespace Ensemble.Telemetry;

/// <summary>
/// The instruments of ActorEnsemble, on one Meter named "ActorEnsemble" (docs/architecture.md lists them). Recording
/// costs a branch while nothing listens: the SDK (<see cref="MetricsExport"/>) subscribes only when an exporter is
/// configured. Gauges of actor state ask the live actors when read, so nothing is counted twice across restarts.
/// </summary>
public static class EnsembleMetrics
{
    public const string MeterName = "ActorEnsemble";

    internal static readonly Meter Meter = new(MeterName, typeof(EnsembleMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>Hooks: how long each ran and with what outcome, and how many run now.</summary>
    public static class Hooks
    {
        private static readonly Histogram<double> Duration = Meter.CreateHistogram("ensemble.hook.duration", "s",
            "How long a hook process ran, by hook, outcome (succeeded, failed, timed-out) and service.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] });

        private static readonly UpDownCounter<long> Running = Meter.CreateUpDownCounter<long>("ensemble.hooks.running", "{hook}",
            "Hook processes running now, by hook.");

        /// <summary>A hook process starts: returns its start time for <see cref="Ran"/>.</summary>
        public static long Starting(string hook)
        {
            Running.Add(1, new KeyValuePair<string, object?>("hook", hook));
            return Stopwatch.GetTimestamp();
        }

        /// <summary>
        /// The hook process is done: <paramref name="result"/> is what it came to, or null when it was cancelled (it
        /// no longer runs; no duration is recorded for it).
        /// </summary>
        public static void Ran(string hook, HookResult? result, HookContext context, long started)
        {
            Running.Add(-1, new KeyValuePair<string, object?>("hook", hook));
            if (result is null) return;
            var outcome = result.TimedOut ? "timed-out" : result.ExitCode == 0 ? "succeeded" : "failed";
            Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds,
                new("hook", result.Hook), new("outcome", outcome), new("service", context.ServiceName));
        }
    }

    /// <summary>Formula bundles: bytes the controller's bundle server sent to agents on other nodes.</summary>
    public static class Bundles
    {
        private static readonly Counter<long> Served = Meter.CreateCounter<long>("ensemble.bundle.served", "By",
            "Bytes of formula bundles the bundle server sent to agents.");

        public static void Sent(long bytes)
        {
            if (bytes > 0) Served.Add(bytes);
        }
    }

    /// <summary>Units: how many are in each lifecycle state, by service, read from the live unit agents of this node.</summary>
    public static class Units
    {
        private static readonly Tracked<(string Service, UnitPhase Phase)> Agents = new();

        static Units() => Meter.CreateObservableGauge("ensemble.units", Observe, "{unit}",
            "Units of this node's machine agents in each state (pending, installing, running, upgrading, *_error, ...), by service.");

        /// <summary>Called once by a unit agent; its state is read when the gauge is, until it stops.</summary>
        public static void Track(IActorRef agent, string unit, Func<UnitPhase> phase) =>
            Agents.Add(agent, () => (Topology.UnitNames.ServiceOf(unit), phase()));

        private static IEnumerable<Measurement<long>> Observe() =>
            Agents.Read().GroupBy(u => u).Select(g => new Measurement<long>(g.LongCount(),
                new("service", g.Key.Service), new("state", UnitLifecycle.StateName(g.Key.Phase))));
    }

    /// <summary>Upgrades: whether one runs now, per service, read from the live coordinators on this node.</summary>
    public static class Upgrades
    {
        private static readonly Tracked<(string Service, bool Running)> Coordinators = new();

        static Upgrades() => Meter.CreateObservableGauge("ensemble.upgrades.running", Observe, "{upgrade}",
            "Upgrades running now (1) or not (0), by service; reported by the controller holding the coordinators.");

        /// <summary>Called once by a service's coordinator; read when the gauge is, until it stops.</summary>
        public static void Track(IActorRef coordinator, string service, Func<bool> running) =>
            Coordinators.Add(coordinator, () => (service, running()));

        private static IEnumerable<Measurement<long>> Observe() =>
            Coordinators.Read().GroupBy(c => c.Service).Select(g => new Measurement<long>(g.Any(c => c.Running) ? 1 : 0, new KeyValuePair<string, object?>("service", g.Key)));
    }

    /// <summary>Health: the last check of each node in this process, 1 healthy, 0 not, by node address.</summary>
    public static class Health
    {
        private static readonly ConcurrentDictionary<IActorRef, global::Ensemble.Health.HealthReplies.NodeHealth> Last = new();

        static Health() => Meter.CreateObservableGauge("ensemble.node.healthy", () => Last.Values.Select(h =>
                new Measurement<long>(h.Healthy ? 1 : 0, new KeyValuePair<string, object?>("node", h.Address))),
            "{node}", "1 when the node's last health check found it healthy, 0 when not (the reasons are in its health file), by node address.");

        public static void Report(IActorRef healthActor, global::Ensemble.Health.HealthReplies.NodeHealth health) => Last[healthActor] = health;

        public static void Forget(IActorRef healthActor) => Last.TryRemove(healthActor, out _);
    }

    /// <summary>Live actors and how to read their state; actors that stopped are dropped when read.</summary>
    private sealed class Tracked<T>
    {
        private readonly ConcurrentDictionary<IActorRef, Func<T>> _readers = new();

        public void Add(IActorRef actor, Func<T> read) => _readers[actor] = read;

        public List<T> Read()
        {
            var values = new List<T>();
            foreach (var (actor, read) in _readers)
            {
                // Asking the local ref is what keeps the trackers to one line in each actor (no PostStop to add).
#pragma warning disable CS0618
                if (actor is IInternalActorRef { IsTerminated: true }) _readers.TryRemove(actor, out _);
#pragma warning restore CS0618
                else values.Add(read());
            }
            return values;
        }
    }
}
