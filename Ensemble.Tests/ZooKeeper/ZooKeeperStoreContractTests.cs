using Ensemble.Coordination;
using Ensemble.Tests.Coordination;
using Ensemble.ZooKeeper;
using Xunit;

namespace Ensemble.Tests.ZooKeeper;

/// <summary>The very same contract suite as the embedded store, against a real ZooKeeper server.</summary>
[Collection(ZooKeeperCollection.Name)]
public sealed class ZooKeeperStoreContractTests(ZooKeeperTestServer server) : CoordinationStoreContract
{
    protected override async Task<ICoordinationStore> OpenSessionAsync() =>
        await ZooKeeperCoordinationStore.ConnectAsync(new ZooKeeperOptions(server.ConnectionString, TimeSpan.FromSeconds(10)));
}
