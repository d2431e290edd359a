using Akka.Configuration;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Ensemble.Telemetry;

/// <summary>
/// Where a node's metrics go: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (the standard variable) or
/// ensemble.telemetry.otlp-endpoint is set, a Prometheus scrape endpoint on loopback when
/// ensemble.telemetry.prometheus-port is; neither: no SDK at all, and the instruments record into nothing.
/// </summary>
public static class MetricsExport
{
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>What the node exports, from its configuration and environment.</summary>
    public sealed record Settings(Uri? OtlpEndpoint, int PrometheusPort, TimeSpan Interval)
    {
        public bool Enabled => OtlpEndpoint is not null || PrometheusPort > 0;

        public static Settings From(Config config, Func<string, string?>? environment = null)
        {
            environment ??= Environment.GetEnvironmentVariable;
            var endpoint = NonEmpty(environment(OtlpEndpointVariable)) ?? NonEmpty(config.GetString("ensemble.telemetry.otlp-endpoint", ""));
            if (endpoint is not null && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
                throw new ConfigurationException($"the OTLP endpoint '{endpoint}' is not an absolute URI such as http://collector:4317; fix {OtlpEndpointVariable} or ensemble.telemetry.otlp-endpoint");
            return new Settings(endpoint is null ? null : new Uri(endpoint),
                config.GetInt("ensemble.telemetry.prometheus-port", 0),
                config.GetTimeSpan("ensemble.telemetry.export-interval", TimeSpan.FromSeconds(15)));
        }
    }

    /// <summary>Starts exporting (dispose to stop), or null when nothing is configured.</summary>
    public static MeterProvider? Start(Settings settings, string serviceInstance)
    {
        if (!settings.Enabled) return null;
        var builder = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService("ActorEnsemble", serviceInstanceId: serviceInstance))
            .AddMeter(EnsembleMetrics.MeterName);
        if (settings.OtlpEndpoint is { } endpoint)
            builder.AddOtlpExporter((exporter, reader) =>
            {
                // The standard OTEL_EXPORTER_OTLP_* variables (protocol, headers) still apply; the endpoint may come from HOCON.
                exporter.Endpoint = endpoint;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)settings.Interval.TotalMilliseconds;
            });
        if (settings.PrometheusPort > 0)
            builder.AddPrometheusHttpListener(o =>
            {
                // Loopback only: a scrape endpoint is not for the network unless an operator puts a proxy in front.
                o.Host = "127.0.0.1";
                o.Port = settings.PrometheusPort;
            });
        return builder.Build();
    }

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
