using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Ensemble.Telemetry;
using Ensemble.Units;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.Telemetry;

/// <summary>
/// The "ActorEnsemble" meter as an exporter sees it, through a MeterListener, during a real upgrade in a local
/// environment whose agents fetch from the bundle server: upgrade-formula hook durations, bundle bytes served, units
/// per state and the upgrade running. Other tests run in the same process, so every assertion names this test's service.
/// </summary>
public sealed class MetricsTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private readonly string _service = "metered-" + Guid.NewGuid().ToString("N")[..8];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measured = new();
    private readonly Lock _observing = new();
    private List<(string Instrument, double Value, Dictionary<string, object?> Tags)> _observed = [];

    protected override LocalEnvironmentOptions Options(LocalEnvironmentOptions defaults) => defaults with { FetchFromBundleServer = true };

    private void Listen()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == EnsembleMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => _measured.Enqueue((i.Name, v, Tags(tags))));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            if (i.IsObservable) lock (_observing) _observed.Add((i.Name, v, Tags(tags)));
            else _measured.Enqueue((i.Name, v, Tags(tags)));
        });
        _listener.Start();
    }

    private static Dictionary<string, object?> Tags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var all = new Dictionary<string, object?>();
        foreach (var (key, value) in tags) all[key] = value;
        return all;
    }

    /// <summary>What the gauges say now, for this test's service.</summary>
    private List<(string Instrument, double Value, Dictionary<string, object?> Tags)> Gauges()
    {
        lock (_observing) _observed = [];
        _listener.RecordObservableInstruments();
        lock (_observing) return _observed.Where(m => m.Tags.GetValueOrDefault("service") as string == _service).ToList();
    }

    private double Gauge(string instrument, string? state = null) =>
        Gauges().Where(m => m.Instrument == instrument && (state is null || m.Tags.GetValueOrDefault("state") as string == state)).Sum(m => m.Value);

    [Fact]
    public async Task An_upgrade_is_seen_in_hook_durations_bundle_bytes_served_units_per_state_and_upgrades_running()
    {
        Listen();
        try { await UpgradeAndLookAsync(); }
        finally { _listener.Dispose(); }
    }

    private async Task UpgradeAndLookAsync()
    {
        TestFormulas.Write(Repository, "app", 1);
        var units = await DeployAsync("app", 2, _service);
        Assert.Equal(2, Gauge("ensemble.units", "running"));
        Assert.Equal(0, Gauge("ensemble.upgrades.running"));

        var control = TestFormulas.ControlDirectory(Repository);
        Directory.CreateDirectory(control);
        var hold = Path.Combine(control, "hold-upgrade-formula");
        File.WriteAllText(hold, "");
        try
        {
            TestFormulas.Write(Repository, "app", 2);
            await Env.UpgradeAsync(_service);
            foreach (var unit in units)
            {
                var data = await DataDirAsync(unit);
                await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(TestFormulas.HookTrace(data).Contains("upgrade-formula 2 begin")),
                    Deadline, $"{unit} in its upgrade hook");
            }
            Assert.Equal(1, Gauge("ensemble.upgrades.running"));
            Assert.Equal(2, Gauge("ensemble.units", UnitLifecycle.StateName(UnitPhase.UpgradingFormula)));
        }
        finally
        {
            File.Delete(hold);
        }
        await WaitForUpgradeToEndAsync(_service);
        await WaitForUnitsAsync(units, u => u.Formula == "local:app-2" && u.State == UnitPhase.Running, "every unit on revision 2");

        var hooks = _measured.Where(m => m.Instrument == "ensemble.hook.duration" && m.Tags["service"] as string == _service).ToList();
        var upgrades = hooks.Where(m => m.Tags["hook"] as string == "upgrade-formula").ToList();
        Assert.Equal(2, upgrades.Count);
        Assert.All(upgrades, m => Assert.Equal("succeeded", m.Tags["outcome"]));
        Assert.All(upgrades, m => Assert.InRange(m.Value, 0, 60));
        Assert.Contains(hooks, m => m.Tags["hook"] as string == "install");
        Assert.True(_measured.Where(m => m.Instrument == "ensemble.bundle.served").Sum(m => m.Value) > 0, "bundle bytes served");
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Gauge("ensemble.upgrades.running") == 0 && Gauge("ensemble.units", "running") == 2),
            Deadline, "the gauges to show the upgrade ended and both units running");
    }
}
