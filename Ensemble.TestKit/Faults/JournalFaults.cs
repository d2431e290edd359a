using System.Collections.Concurrent;
using System.Collections.Immutable;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Sql.Journal;

namespace Ensemble.TestKit;

/// <summary>
/// Journal writes that fail on demand, as a disk or a database that refuses a write does: the persistent actor
/// that asked is stopped (Akka.Persistence's rule), exactly as a controller that crashed before its journal write.
/// One per environment; <see cref="Config"/> puts <see cref="FaultyJournal"/> in front of the SQL journal.
/// </summary>
public sealed class JournalFaults
{
    private static readonly ConcurrentDictionary<string, JournalFaults> ByKey = new();
    private readonly string _key;
    private Func<object, bool>? _failNext;
    private long _failed;

    private JournalFaults(string key) => _key = key;

    /// <summary>The faults of the environment in <paramref name="directory"/>.</summary>
    public static JournalFaults For(string directory) => ByKey.GetOrAdd(directory, key => new JournalFaults(key));

    /// <summary>Actor system configuration that routes the journal's writes through these faults.</summary>
    public Config Config => ConfigurationFactory.ParseString($$"""
        akka.persistence.journal.sql.class = "{{typeof(FaultyJournal).FullName}}, {{typeof(FaultyJournal).Assembly.GetName().Name}}"
        akka.persistence.journal.sql.fault-key = "{{_key.Replace("\\", "\\\\")}}"
        """);

    /// <summary>The next write holding an event that <paramref name="match"/> picks fails, and with it the whole write.</summary>
    public void FailNextWriteOf(Func<object, bool> match) => Volatile.Write(ref _failNext, match);

    /// <summary>How many writes failed so far.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    internal static JournalFaults? Lookup(string key) => ByKey.GetValueOrDefault(key);

    internal bool Take(IReadOnlyList<AtomicWrite> writes)
    {
        if (Volatile.Read(ref _failNext) is not { } match) return false;
        if (!writes.SelectMany(w => (IEnumerable<IPersistentRepresentation>)w.Payload).Any(p => match(p.Payload))) return false;
        if (Interlocked.CompareExchange(ref _failNext, null, match) != match) return false;
        Interlocked.Increment(ref _failed);
        return true;
    }
}

/// <summary>The SQL journal, but failing a write when its environment's <see cref="JournalFaults"/> says so.</summary>
public sealed class FaultyJournal(Config config) : SqlWriteJournal(config)
{
    private readonly JournalFaults? _faults = JournalFaults.Lookup(config.GetString("fault-key", ""));

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToList();
        return _faults?.Take(writes) == true
            ? Task.FromException<IImmutableList<Exception>>(new IOException("injected journal fault: the write failed"))
            : base.WriteMessagesAsync(writes, cancellationToken);
    }
}
