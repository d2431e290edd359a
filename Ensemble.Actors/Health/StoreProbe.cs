using Ensemble.Coordination;
using Ensemble.ZooKeeper;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// Checks one coordination store session: the state its ZooKeeper client already knows (free), then one read of the
/// topology's root with a deadline, which is what tells an embedded store or a store behind an outage apart.
/// </summary>
public sealed class StoreProbe(string session, ICoordinationStore store, string root)
{
    public string Session => session;

    public async Task<StoreHealth> CheckAsync(TimeSpan deadline)
    {
        var (backend, state) = Describe(store);
        string? error = null;
        try
        {
            await store.ExistsAsync(root).WaitAsync(deadline);
        }
        catch (TimeoutException)
        {
            error = $"a read of {root} did not answer within {deadline.TotalSeconds:0.#} s";
        }
        catch (Exception ex)
        {
            error = ex.GetBaseException().Message;
        }
        // The client's own state names the trouble better than a failed read does; a failed read with a client that
        // believes itself connected (or an embedded store) is an unreachable store.
        if (state is not null && state != HealthJudge.Connected) return new StoreHealth(session, backend, state, error);
        return error is null
            ? new StoreHealth(session, backend, HealthJudge.Connected, null)
            : new StoreHealth(session, backend, "unreachable", error);
    }

    private static (string Backend, string? State) Describe(ICoordinationStore store) => store switch
    {
        RenewingZooKeeperStore renewing => ("zookeeper", Name(renewing.Client.State)),
        ZooKeeperCoordinationStore plain => ("zookeeper", Name(plain.Client.State)),
        _ => ("embedded", null),
    };

    private static string Name(ConnectionState state) => state switch
    {
        ConnectionState.SyncConnected => HealthJudge.Connected,
        ConnectionState.Connecting or ConnectionState.Disconnected => "reconnecting",
        ConnectionState.Expired => "expired",
        _ => "closed",
    };
}
