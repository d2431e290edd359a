using System.Net;
using System.Text;
using System.Text.Json;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// For supervisors that probe over HTTP rather than read a file: GET http://127.0.0.1:PORT/health answers the node's
/// last check, 200 when healthy, 503 when not (or before the first check), with the health file's JSON. Loopback only,
/// off unless ensemble.health.http-port is set.
/// </summary>
public sealed class HealthEndpoint : IDisposable
{
    private readonly HttpListener _listener = new();
    private volatile NodeHealth? _last;

    private HealthEndpoint(int port)
    {
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/health/");
        _listener.Start();
        _ = ServeAsync();
    }

    /// <summary>Listens on 127.0.0.1:<paramref name="port"/>; throws <see cref="HttpListenerException"/> when the port is taken.</summary>
    public static HealthEndpoint Start(int port) => new(port);

    public void Publish(NodeHealth health) => _last = health;

    public static int StatusCodeFor(NodeHealth? health) => health is { Healthy: true } ? 200 : 503;

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            try
            {
                var health = _last;
                var body = health is null
                    ? "{\"healthy\": false, \"reasons\": [\"not checked yet\"]}\n"
                    : HealthDocument.Of(health).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
                var bytes = Encoding.UTF8.GetBytes(body);
                context.Response.StatusCode = StatusCodeFor(health);
                context.Response.ContentType = "application/json";
                context.Response.ContentLength64 = bytes.Length;
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The prober went away mid-answer; the next one is answered all the same.
            }
        }
    }

    public void Dispose()
    {
        try { _listener.Close(); }
        catch (ObjectDisposedException) { }
    }
}
