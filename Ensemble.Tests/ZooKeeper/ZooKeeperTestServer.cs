using Xunit;
using Ensemble.ZooKeeper;
using Ensemble.TestKit.ZooKeeper;

namespace Ensemble.Tests.ZooKeeper;

/// <summary>
/// A real standalone ZooKeeper server for tests (tickTime 500 ms, free loopback port, temp data dir).
/// Usable as an xunit fixture; throws (tests fail, never skip) when Java or the ZooKeeper jar is missing.
/// </summary>
public sealed class ZooKeeperTestServer() : LocalZooKeeperServer(tickTime: 500);

/// <summary>A real 3-node ZooKeeper ensemble (QuorumPeerMain) for tests; the constructor waits for a quorum.</summary>
public sealed class ZooKeeperTestEnsemble() : LocalZooKeeperEnsemble(size: 3, tickTime: 500);

[CollectionDefinition(Name)]
public sealed class ZooKeeperCollection : ICollectionFixture<ZooKeeperTestServer>
{
    public const string Name = "ZooKeeper";
}

/// <summary>Records watch events and waits for them with deadlines.</summary>
public sealed class EventRecorder
{
    private readonly List<WatchedEvent> _events = [];

    public void Record(WatchedEvent e)
    {
        lock (_events) _events.Add(e);
    }

    public Action<WatchedEvent> Watcher => Record;

    public IReadOnlyList<WatchedEvent> Events
    {
        get { lock (_events) return [.. _events]; }
    }

    public int Count(Func<WatchedEvent, bool> predicate)
    {
        lock (_events) return _events.Count(predicate);
    }

    public async Task<WatchedEvent> WaitForAsync(Func<WatchedEvent, bool> predicate, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            lock (_events)
            {
                var found = _events.FirstOrDefault(predicate);
                if (found is not null) return found;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"No matching event ({what}) within the deadline; got: {string.Join(", ", Events)}");
            await Task.Delay(10);
        }
    }
}

public static class Zk
{
    public static TimeSpan Deadline { get; } = TimeSpan.FromSeconds(20);

    public static ZooKeeperOptions Options(string connectionString, double sessionSeconds = 10) =>
        new(connectionString, TimeSpan.FromSeconds(sessionSeconds)) { ConnectTimeout = TimeSpan.FromSeconds(15) };

    public static Task<ZooKeeperClient> ConnectAsync(string connectionString, Action<WatchedEvent>? watcher = null, double sessionSeconds = 10)
        => ZooKeeperClient.ConnectAsync(Options(connectionString, sessionSeconds), watcher);

    public static string UniqueRoot() => "/t-" + Guid.NewGuid().ToString("N")[..10];

    public static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    public static string Text(byte[] b) => System.Text.Encoding.UTF8.GetString(b);

    /// <summary>Polls a condition until it holds or the deadline passes.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Deadline);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Condition not met within the deadline: {what}");
            await Task.Delay(20);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? what = null)
        => UntilAsync(() => Task.FromResult(condition()), timeout, what);
}
