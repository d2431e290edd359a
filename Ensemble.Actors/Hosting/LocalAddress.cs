using System.Net;
using System.Net.Sockets;

namespace Ensemble.Hosting;

/// <summary>Which of this machine's addresses another machine can reach it at.</summary>
public static class LocalAddress
{
    /// <summary>
    /// The local address the system would send from to reach <paramref name="host"/>: a UDP socket is "connected"
    /// to it, which picks a route and a source address without sending a packet. Loopback for a loopback target;
    /// null when there is no route (or the name does not resolve).
    /// </summary>
    public static string? Toward(string host, int port)
    {
        IPAddress target;
        if (!IPAddress.TryParse(host, out target!))
        {
            try { target = Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? throw new SocketException(); }
            catch (SocketException) { return null; }
        }
        if (IPAddress.IsLoopback(target)) return target.ToString();
        try
        {
            using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(new IPEndPoint(target, port is > 0 and <= 65535 ? port : 9));
            return (socket.LocalEndPoint as IPEndPoint)?.Address.ToString();
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>HOST:PORT split, or null when it is not that (a port of 1 to 65535 after the last colon).</summary>
    public static (string Host, int Port)? ParseHostAndPort(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1) return null;
        var host = text[..colon];
        if (!int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            || port is < 1 or > 65535)
            return null;
        if (host.Any(c => char.IsWhiteSpace(c) || c is '/' or '@' or ',' or ':')) return null;
        return (host, port);
    }
}
