using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using Ensemble.Telemetry;
using Xunit;

namespace Ensemble.Tests.Telemetry;

/// <summary>What a node exports: nothing unless told; OTLP from the standard variable or HOCON; a loopback scrape endpoint.</summary>
public sealed class MetricsExportTests
{
    private static Config Conf(string hocon) => ConfigurationFactory.ParseString(hocon).WithFallback(Ensemble.Hosting.EnsembleConfig.Defaults);

    [Fact]
    public void Nothing_is_exported_unless_an_endpoint_or_a_port_is_configured()
    {
        var none = MetricsExport.Settings.From(Conf(""), _ => null);
        Assert.False(none.Enabled);
        Assert.Null(MetricsExport.Start(none, "test"));

        var fromVariable = MetricsExport.Settings.From(Conf("ensemble.telemetry.otlp-endpoint = \"http://hocon:4317\""),
            name => name == MetricsExport.OtlpEndpointVariable ? "http://collector:4318" : null);
        Assert.Equal(new Uri("http://collector:4318"), fromVariable.OtlpEndpoint);
        Assert.Equal(new Uri("http://hocon:4317"), MetricsExport.Settings.From(Conf("ensemble.telemetry.otlp-endpoint = \"http://hocon:4317\""), _ => null).OtlpEndpoint);
        Assert.Equal(TimeSpan.FromSeconds(15), fromVariable.Interval);

        var bad = Assert.Throws<ConfigurationException>(() => MetricsExport.Settings.From(Conf(""), _ => "collector"));
        Assert.Contains(MetricsExport.OtlpEndpointVariable, bad.Message);
    }

    [Fact]
    public async Task A_prometheus_port_serves_the_ensemble_instruments_on_loopback()
    {
        var port = FreePort();
        using var provider = MetricsExport.Start(MetricsExport.Settings.From(Conf($"ensemble.telemetry.prometheus-port = {port}"), _ => null), "test");
        Assert.NotNull(provider);
        EnsembleMetrics.Bundles.Sent(65536);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? scraped = null;
        await LocalEnvironment.WaitUntilAsync(async () =>
        {
            try { scraped = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics"); }
            catch (HttpRequestException) { return false; }
            return scraped.Contains("ensemble_bundle_served", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), "the scrape endpoint to show ensemble_bundle_served");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
