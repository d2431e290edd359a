using Ensemble.Serialization;

namespace Ensemble.Services;

/// <summary>
/// When a coordinator snapshots its state and what it may then delete, so that its recovery reads one snapshot
/// and a bounded tail of events however many upgrades it has run. Pure: the actor only asks and acts.
/// </summary>
public static class JournalHygiene
{
    /// <summary>The default of ensemble.controller.snapshot-every.</summary>
    public const int DefaultSnapshotEvery = 100;

    /// <summary>
    /// True when <paramref name="lastSequenceNr"/> is <paramref name="every"/> or more events past the last snapshot
    /// (0 when there is none); never when snapshots are off (<paramref name="every"/> 0 or less). Asked after each
    /// journaled event and once at the end of recovery, so a journal written before snapshots existed (or with them
    /// off) is compacted on the coordinator's first start with them on.
    /// </summary>
    public static bool SnapshotDue(long lastSequenceNr, long snapshotSequenceNr, int every) =>
        every > 0 && lastSequenceNr - snapshotSequenceNr >= every;

    /// <summary>
    /// What a saved snapshot at <paramref name="snapshotSequenceNr"/> makes redundant: every event up to and including
    /// it, and every older snapshot. The newest snapshot is always kept (a recovery needs it), and so are the events
    /// after it.
    /// </summary>
    public static (long EventsTo, long SnapshotsTo) Redundant(long snapshotSequenceNr) => (snapshotSequenceNr, snapshotSequenceNr - 1);
}

/// <summary>A coordinator's state as its snapshot store keeps it (serialized by <see cref="EnsembleSerializer"/>, "svc.snapshot").</summary>
public sealed record ServiceSnapshot(ServiceState State) : IPersistedEvent;
