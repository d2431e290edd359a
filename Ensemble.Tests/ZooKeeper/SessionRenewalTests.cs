using Ensemble.Coordination;
using Ensemble.Topology;
using Ensemble.Units;
using Ensemble.ZooKeeper;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Tests.ZooKeeper;

/// <summary>
/// ZooKeeper ends an agent's session (the host was cut off past the session timeout, or someone closed it):
/// the agent opens a new session by itself, announces itself again, and the upgrade it was in finishes —
/// nobody restarts anything.
/// </summary>
[Collection(ZooKeeperCollection.Name)]
public sealed class SessionRenewalTests : EnvironmentTest
{
    private readonly ZooKeeperTestServer _server;

    public SessionRenewalTests(ZooKeeperTestServer server, ITestOutputHelper output) : base(output) => _server = server;

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) =>
        defaults with { ZooKeeper = _server.ConnectionString, Root = "/renewal-" + Guid.NewGuid().ToString("N")[..8] };

    /// <summary>
    /// Closes a session from another connection, as ZooKeeper expires one: connect with its id and password and
    /// close it. The owner may win the session back first (it reconnects, and the server drops our connection);
    /// then try again, until the server says the session is gone.
    /// </summary>
    private async Task ExpireAsync(long sessionId, byte[] password)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                await using var intruder = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions(_server.ConnectionString, TimeSpan.FromSeconds(10))
                    { SessionId = sessionId, SessionPassword = password });
                // Disposing sends closeSession for it.
            }
            catch (SessionExpiredException)
            {
                return;
            }
        }
        throw new TimeoutException($"session 0x{sessionId:x} could not be closed within {Deadline}");
    }

    [Fact]
    public async Task An_agent_whose_session_expired_mid_upgrade_announces_itself_again_and_the_upgrade_finishes()
    {
        var control = TestFormulas.ControlDirectory(Repository);
        TestFormulas.Write(Repository, "db", 1);
        var unit = (await DeployAsync("db", 1)).Single();
        File.WriteAllText(Path.Combine(await DataDirAsync(unit), "orders.db"), "42 orders");
        File.WriteAllText(Path.Combine(control, "hold-upgrade-formula"), "");
        TestFormulas.Write(Repository, "db", 2);
        Assert.IsType<UpgradeStarted>(await Env.UpgradeAsync("db"));
        await LocalEnvironment.WaitUntilAsync(async () => TestFormulas.HookTrace(await DataDirAsync(unit)).Contains("upgrade-formula 2 begin"),
            Deadline, "the upgrade hook to begin");

        // Someone else ends the agent's session, as ZooKeeper does for a host cut off too long: its presence goes with it.
        var session = (RenewingZooKeeperStore)Env.MachineSession("m0");
        var expired = session.SessionId;
        var presence = Env.Options.Root + "/agents/m0";
        Assert.Equal(expired, (await Env.ControllerSession.ExistsAsync(presence))!.EphemeralOwner);
        await ExpireAsync(expired, session.Client.SessionPassword);

        // A new session, and the presence node again, owned by it.
        await LocalEnvironment.WaitUntilAsync(async () => session.SessionId != expired
            && (await Env.ControllerSession.ExistsAsync(presence))?.EphemeralOwner == session.SessionId, Deadline, "the agent to announce itself in a new session");
        Assert.Equal(1, session.Renewals);

        File.Delete(Path.Combine(control, "hold-upgrade-formula"));
        await WaitForUnitsAsync([unit], u => u.Formula == "local:db-2" && u.State == UnitPhase.Running, "the unit on revision 2");
        await WaitForUpgradeToEndAsync("db");
        Assert.Null(await Env.Topology.GetUpgradeFlagAsync(unit));
        var trace = TestFormulas.HookTrace(await DataDirAsync(unit));
        Assert.Single(trace, line => line == "install 1 begin");
        Assert.Single(trace, line => line == "upgrade-formula 2 end");
        Assert.Equal("42 orders", File.ReadAllText(Path.Combine(await DataDirAsync(unit), "orders.db")));
    }
}
