using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Ensemble.Telemetry;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// How a node checks itself: how often, how long each probe may take, where it writes the health file (null: nowhere),
/// and the loopback port of its HTTP endpoint (0: none).
/// </summary>
public sealed record HealthSettings(TimeSpan Interval, TimeSpan ProbeDeadline, string? FilePath, int HttpPort = 0)
{
    public static HealthSettings Default { get; } = new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(3), null);
}

/// <summary>What a node's health actor checks: the node's name for itself, its store sessions, and whether it has a journal.</summary>
public sealed record HealthContext(string? Machine, IReadOnlyList<StoreProbe> Stores, bool HasJournal, HealthSettings Settings);

/// <summary>
/// A node's health, at /user/health on every node: every interval it observes the cluster member, each store session and
/// (controllers) the journal, judges them (<see cref="HealthJudge"/>), writes the health file and keeps the answer, so a
/// question is answered at once from the last check — only the first question waits for the first check.
/// </summary>
public sealed class HealthActor : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    public const string ActorName = "health";
    public const string Path = "/user/" + ActorName;

    private sealed class Check
    {
        public static readonly Check Instance = new();
    }

    private sealed record Checked(NodeHealth Health, string? FileError);

    private readonly HealthContext _context;
    private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private NodeHealth? _last;
    private bool _checking;
    private string? _fileError;
    private HealthEndpoint? _endpoint;

    public ITimerScheduler Timers { get; set; } = null!;

    public IStash Stash { get; set; } = null!;

    public HealthActor(HealthContext context)
    {
        _context = context;
        Receive<Check>(_ => BeginCheck());
        Receive<Checked>(m =>
        {
            _checking = false;
            if (_last is null || _last.Healthy != m.Health.Healthy)
                if (m.Health.Healthy) _log.Info("node is healthy");
                else _log.Warning("node is unhealthy: {0}", string.Join("; ", m.Health.Reasons));
            // Said once per cause, not every few seconds.
            if (m.FileError != _fileError && m.FileError is not null) _log.Warning("could not write the health file {0}: {1}", _context.Settings.FilePath, m.FileError);
            _fileError = m.FileError;
            _last = m.Health;
            _endpoint?.Publish(m.Health);
            EnsembleMetrics.Health.Report(Self, m.Health);
            Stash.UnstashAll();
        });
        Receive<HealthRequests.GetNodeHealth>(_ =>
        {
            if (_last is null) Stash.Stash();
            else Sender.Tell(_last);
        });
    }

    public static Props Props(HealthContext context) => Akka.Actor.Props.Create(() => new HealthActor(context));

    protected override void PreStart()
    {
        if (_context.Settings.HttpPort > 0)
        {
            // A taken port costs the endpoint, not the node: the health file and /user/health still answer.
            try { _endpoint = HealthEndpoint.Start(_context.Settings.HttpPort); }
            catch (System.Net.HttpListenerException ex) { _log.Error("no health endpoint on 127.0.0.1:{0}: {1}", _context.Settings.HttpPort, ex.Message); }
        }
        Self.Tell(Check.Instance);
        Timers.StartPeriodicTimer("check", Check.Instance, _context.Settings.Interval);
    }

    protected override void PostStop()
    {
        _endpoint?.Dispose();
        EnsembleMetrics.Health.Forget(Self);
    }

    private void BeginCheck()
    {
        if (_checking) return;
        _checking = true;
        var deadline = _context.Settings.ProbeDeadline;
        var cluster = Cluster.Get(Context.System);
        var self = cluster.SelfMember;
        var state = cluster.State;
        var address = $"{cluster.SelfAddress.Host}:{cluster.SelfAddress.Port}";
        var journal = _context.HasJournal ? JournalProbe.Start(Context, $"health-probe-{address}", deadline) : null;
        var stores = _context.Stores.Select(s => s.CheckAsync(deadline)).ToList();
        var settings = _context.Settings;
        var machine = _context.Machine;
        var startedAt = _startedAt;
        CheckAsync().PipeTo(Self);

        async Task<Checked> CheckAsync()
        {
            var observation = new NodeObservation(
                address,
                self.Roles.OrderBy(r => r, StringComparer.Ordinal).ToList(),
                machine,
                self.Status.ToString(),
                state.Unreachable.Any(m => m.UniqueAddress == self.UniqueAddress),
                state.Unreachable.Where(m => m.UniqueAddress != self.UniqueAddress).Select(m => $"{m.Address.Host}:{m.Address.Port}").OrderBy(a => a, StringComparer.Ordinal).ToList(),
                await Task.WhenAll(stores),
                journal is null ? null : await journal,
                journal is not null,
                startedAt,
                DateTimeOffset.UtcNow);
            var health = HealthJudge.Judge(observation);
            string? fileError = null;
            if (settings.FilePath is { } path)
            {
                try { HealthFile.Write(path, health); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { fileError = ex.Message; }
            }
            return new Checked(health, fileError);
        }
    }
}
