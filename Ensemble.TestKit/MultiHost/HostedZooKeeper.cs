using System.Globalization;
using Ensemble.TestKit.ZooKeeper;

namespace Ensemble.TestKit.MultiHost;

/// <summary>
/// A real standalone ZooKeeper server (the Debian jar) running on a simulated host and serving on that host's address.
/// It can be killed and started again with the same data and port; the network's dispose ends it.
/// </summary>
public sealed class HostedZooKeeper
{
    private HostProcess? _process;

    private HostedZooKeeper(SimulatedHost host, int port, int tickTime)
    {
        Host = host;
        Port = port;
        TickTime = tickTime;
        Directory = Path.Combine(host.DataRoot, string.Create(CultureInfo.InvariantCulture, $"zookeeper-{port}"));
        ConfigPath = Path.Combine(Directory, "zoo.cfg");
    }

    public SimulatedHost Host { get; }
    public int Port { get; }
    public int TickTime { get; }

    /// <summary>Its configuration and data, on its host.</summary>
    public string Directory { get; }

    public string ConfigPath { get; }

    /// <summary>"ADDRESS:PORT", for clients on the other hosts.</summary>
    public string ConnectionString => string.Create(CultureInfo.InvariantCulture, $"{Host.Address}:{Port}");

    /// <summary>The server's JVM while it runs (its output holds the server log).</summary>
    public HostProcess Process => _process ?? throw new InvalidOperationException("The ZooKeeper server has not been started.");

    public bool IsRunning => _process is { HasExited: false };

    internal static async Task<HostedZooKeeper> StartAsync(SimulatedHost host, int port, int tickTime, TimeSpan timeout)
    {
        var server = new HostedZooKeeper(host, port, tickTime);
        System.IO.Directory.CreateDirectory(Path.Combine(server.Directory, "data"));
        // clientPortAddress: a server on the wildcard address would answer on the host's loopback as well, which no
        // other host can use; bound to the host's address it is exactly as reachable as that address.
        await File.WriteAllTextAsync(server.ConfigPath, string.Create(CultureInfo.InvariantCulture, $"""
            tickTime={tickTime}
            dataDir={Path.Combine(server.Directory, "data")}
            clientPort={port}
            clientPortAddress={host.Address}
            maxSessionTimeout=60000
            maxClientCnxns=0
            admin.enableServer=false
            4lw.commands.whitelist=ruok,srvr,mntr,stat
            """));
        await server.StartAsync(timeout);
        return server;
    }

    /// <summary>Starts the server (again, with the same data) unless it runs, and waits until it serves.</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        if (IsRunning) return;
        var java = ZooKeeperJava.RequireJava();
        _process = Host.Start(java,
            [.. ZooKeeperJava.FastStartJvmOptions, "-Dzookeeper.admin.enableServer=false", "-Dzookeeper.jmx.log4j.disable=true",
             "-cp", ZooKeeperJava.ClassPath, "org.apache.zookeeper.server.ZooKeeperServerMain", ConfigPath],
            name: string.Create(CultureInfo.InvariantCulture, $"zookeeper-{Port}"));
        await WaitUntilServingAsync(timeout ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILLs the server and waits until it is gone: its clients see the connection drop.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Waits until the server answers `srvr` with a mode, asked from its own host.</summary>
    public async Task WaitUntilServingAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Process.HasExited)
                throw new InvalidOperationException($"ZooKeeper on {Host.Name} exited with {Process.ExitCode} while starting. Log:\n{Process.Tail()}");
            // A server still starting can accept the connection and not answer yet (more so on a loaded machine):
            // a probe that times out is one more try, not the end of the wait.
            try
            {
                var srvr = await Host.RunAsync(Tools.Command("bash"),
                    ["-c", "exec 3<>\"/dev/tcp/$0/$1\" && printf srvr >&3 && cat <&3", Host.Address, Port.ToString(CultureInfo.InvariantCulture)],
                    timeout: TimeSpan.FromSeconds(10));
                if (srvr.ExitCode == 0 && srvr.Stdout.Contains("Mode: standalone", StringComparison.Ordinal)) return;
            }
            catch (TimeoutException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"ZooKeeper on {ConnectionString} did not serve within {timeout}. Log:\n{Process.Tail()}");
            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }

    public override string ToString() => $"ZooKeeper on {ConnectionString}";
}
