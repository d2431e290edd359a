using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ensemble.TestKit;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.MultiHost;

/// <summary>
/// Controllers that survive (issue 11): three controllers on their own hosts sharing a real PostgreSQL journal and a
/// real ZooKeeper, agents on two more hosts, the installed CLI on a sixth. The active controller killed -9 or cut off
/// from the others mid-rollout, PostgreSQL restarted mid-rollout: the rollout goes on, every unit's upgrade-formula
/// hook runs exactly once, and a waiting `upgrade-formula --wait` sees it to the end.
/// </summary>
public sealed class ControllerFailoverTests(ITestOutputHelper output)
{
    private const string Service = "hello";

    /// <summary>The takeover bound docs/architecture.md states: failure detection, the split brain resolver's 7 s, the singleton's hand-over and the coordinator's recovery.</summary>
    private static readonly TimeSpan TakeoverBound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_active_controller_killed_mid_rollout_is_replaced_within_the_bound_and_the_rollout_and_the_waiting_cli_finish()
    {
        await using var env = await HaEnvironment.StartAsync(output);
        const int units = 30;
        await DeployAsync(env, units);
        var first = HaEnvironment.ActiveController(await env.StatusUntilAsync(s => HaEnvironment.ActiveController(s) is not null, TimeSpan.FromSeconds(30), "an active controller"));
        Assert.Equal(env.AddressOf("c1"), first);

        // A rolling upgrade, three units at a time; stopped with three hooks in flight after a few waves.
        TestFormulas.Write(env.Repository, Service, revision: 2);
        var hold = Path.Combine(env.Control, "hold-upgrade-formula");
        var waiter = env.StartEnsemble("upgrade-wait", "upgrade-formula", "--repository", env.Repository, "--max-parallel", "3", "--wait", Service);
        await HaEnvironment.Until(() => env.Count("upgrade-formula 2 end") >= 9, TimeSpan.FromSeconds(120), "nine units upgraded");
        await File.WriteAllTextAsync(hold, "");
        await HaEnvironment.Until(() => env.Count("upgrade-formula 2 begin") - env.Count("upgrade-formula 2 end") == 3, TimeSpan.FromSeconds(60), "three hooks held");
        var beforeKill = env.Count("upgrade-formula 2 end");

        var killedAt = Stopwatch.StartNew();
        env.Controllers["c1"].Kill();
        await env.Controllers["c1"].WaitForExitAsync(TimeSpan.FromSeconds(30));
        var taken = await env.StatusUntilAsync(s => HaEnvironment.ActiveController(s) is { } a && a != first, TakeoverBound, "another controller active");
        var takeover = killedAt.Elapsed;
        output.WriteLine($"takeover: {HaEnvironment.ActiveController(taken)} active {takeover.TotalSeconds:0.0} s after kill -9 of {first}");
        Assert.True(takeover < TakeoverBound, $"the takeover took {takeover}");
        // The new active controller recovered the run from the shared journal: it knows the units already upgraded.
        Assert.True(env.Count("upgrade-formula 2 end") == beforeKill, "a unit finished while every hook was held");

        File.Delete(hold);
        var code = await waiter.WaitForExitAsync(TimeSpan.FromMinutes(5));
        var said = waiter.ReadLog();
        output.WriteLine($"upgrade-formula --wait ended with {code}:\n{said}");
        Assert.True(code == 0, $"the waiting upgrade-formula ended with {code}:\n{said}\n{env.Logs()}");
        Assert.DoesNotContain("Unhandled exception", said);

        var done = await env.StatusUntilAsync(s => AllOn(s, units, 2), TimeSpan.FromSeconds(60), "every unit on revision 2");
        AssertEachHookOnce(env, units, 2);
        Assert.NotEqual(first, HaEnvironment.ActiveController(done));
    }

    [Fact]
    public async Task The_active_controller_cut_off_from_the_others_stops_acting_the_majority_goes_on_and_a_postgresql_restart_only_pauses_a_rollout()
    {
        await using var env = await HaEnvironment.StartAsync(output);
        const int units = 6;
        await DeployAsync(env, units);
        var c1 = env.Network["c1"];
        Assert.Equal(env.AddressOf("c1"), HaEnvironment.ActiveController(await env.StatusUntilAsync(s => HaEnvironment.ActiveController(s) is not null, TimeSpan.FromSeconds(30), "an active controller")));

        // c1 keeps ZooKeeper and PostgreSQL but loses every other node: the split brain resolver's minority.
        TestFormulas.Write(env.Repository, Service, revision: 2);
        var hold = Path.Combine(env.Control, "hold-upgrade-formula");
        await File.WriteAllTextAsync(hold, "");
        var upgrade = await env.EnsembleAsync("upgrade-formula", "--repository", env.Repository, "--max-parallel", "2", Service);
        Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
        await HaEnvironment.Until(() => env.Count("upgrade-formula 2 begin") == 2, TimeSpan.FromSeconds(60), "two hooks begun");
        foreach (var other in new[] { "c2", "c3", "a1", "a2", "operator" }) await c1.CutOffFromAsync(env.Network[other]);

        await env.Controllers["c1"].WaitForOutputAsync("the cluster downed this node", TimeSpan.FromSeconds(60));
        var majority = await env.StatusUntilAsync(s => HaEnvironment.ActiveController(s) is { } a && a != env.AddressOf("c1"), TimeSpan.FromSeconds(60),
            "c2 or c3 active");
        output.WriteLine($"active after the partition: {HaEnvironment.ActiveController(majority)}");
        File.Delete(hold);
        await env.StatusUntilAsync(s => AllOn(s, units, 2), TimeSpan.FromSeconds(120), "every unit on revision 2");
        AssertEachHookOnce(env, units, 2);
        // Cut off, c1 never founded a cluster of its own beside the running one: it is not up again.
        Assert.DoesNotContain("is up again", env.Controllers["c1"].ReadLog());

        // Healed, c1 joins the running controllers as a standby.
        foreach (var other in new[] { "c2", "c3", "a1", "a2", "operator" }) await c1.ReconnectToAsync(env.Network[other]);
        await env.Controllers["c1"].WaitForOutputAsync("is up again", TimeSpan.FromSeconds(120));
        var healed = await env.StatusUntilAsync(s => HaEnvironment.ControllerAddresses(s).Count == 3, TimeSpan.FromSeconds(60), "three controllers again");
        Assert.Equal(HaEnvironment.ActiveController(majority), HaEnvironment.ActiveController(healed));

        // PostgreSQL killed with a hook in flight: the rollout pauses (nothing more begins), and goes on once it is back.
        TestFormulas.Write(env.Repository, Service, revision: 3);
        await File.WriteAllTextAsync(hold, "");
        upgrade = await env.EnsembleAsync("upgrade-formula", "--repository", env.Repository, "--max-parallel", "1", Service);
        Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
        await HaEnvironment.Until(() => env.Count("upgrade-formula 3 begin") == 1, TimeSpan.FromSeconds(60), "the first hook begun");
        await env.Postgres.KillAsync();
        File.Delete(hold);
        await HaEnvironment.Until(() => env.Count("upgrade-formula 3 end") == 1, TimeSpan.FromSeconds(60), "the first hook ended");
        // The end of that unit's upgrade cannot be journaled: the active controller says so, and launches nothing more.
        var active = env.Controllers.Single(c => env.AddressOf(c.Key) == HaEnvironment.ActiveController(healed)).Value;
        await active.WaitForOutputAsync(new Regex("could not journal|journal failed it|Failed to persist|Persistence failure"), TimeSpan.FromSeconds(60));
        Assert.Equal(1, env.Count("upgrade-formula 3 begin"));

        await env.Postgres.StartAsync();
        await env.StatusUntilAsync(s => AllOn(s, units, 3), TimeSpan.FromSeconds(180), "every unit on revision 3");
        AssertEachHookOnce(env, units, 3);
    }

    private static async Task DeployAsync(HaEnvironment env, int units)
    {
        TestFormulas.Write(env.Repository, Service, revision: 1);
        var deploy = await env.EnsembleAsync("deploy", "--repository", env.Repository, "-n", units.ToString(CultureInfo.InvariantCulture), "--wait", Service);
        Assert.True(deploy.ExitCode == 0, deploy.ToString() + env.Logs());
    }

    private static bool AllOn(JsonElement status, int units, int revision)
    {
        var service = status.GetProperty("services").GetProperty(Service);
        var all = service.GetProperty("units").EnumerateObject().ToList();
        return !service.GetProperty("upgrade-running").GetBoolean() && all.Count == units && all.All(u =>
            u.Value.GetProperty("formula").GetString() == $"local:hello-{revision}" && u.Value.GetProperty("state").GetString() == "running");
    }

    /// <summary>No unit upgraded twice, none skipped: each unit's upgrade-formula hook of this revision began and ended once.</summary>
    private static void AssertEachHookOnce(HaEnvironment env, int units, int revision)
    {
        var trace = env.SharedTrace();
        for (var n = 0; n < units; n++)
        {
            var unit = $"{Service}/{n}";
            Assert.True(trace.Count(l => l == $"{unit} upgrade-formula {revision} begin") == 1 && trace.Count(l => l == $"{unit} upgrade-formula {revision} end") == 1,
                $"{unit}'s upgrade-formula hook of revision {revision} did not run exactly once:\n{string.Join('\n', trace.Where(l => l.StartsWith(unit + " ", StringComparison.Ordinal)))}");
        }
    }
}
