using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ensemble.TestKit.ZooKeeper;

/// <summary>Finds and launches the Debian ZooKeeper server jar; free ports; four-letter-word probes.</summary>
public static class ZooKeeperJava
{
    public const string Jar = "/usr/share/java/zookeeper.jar";
    private const string Slf4jSimple = "/usr/share/java/slf4j-simple.jar";

    /// <summary>The java executable (JAVA_HOME or PATH); throws with a clear message when Java or the jar is missing.</summary>
    public static string RequireJava()
    {
        if (!File.Exists(Jar))
            throw new InvalidOperationException(
                $"The ZooKeeper server jar {Jar} is missing: install it with 'apt-get install -y zookeeper'. ZooKeeper tests need a real server.");
        var javaHome = Environment.GetEnvironmentVariable("JAVA_HOME");
        if (!string.IsNullOrEmpty(javaHome) && File.Exists(Path.Combine(javaHome, "bin", "java")))
            return Path.Combine(javaHome, "bin", "java");
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "java");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("No 'java' executable found (JAVA_HOME or PATH): the ZooKeeper server needs Java 11+.");
    }

    public static string ClassPath => File.Exists(Slf4jSimple) ? Jar + ":" + Slf4jSimple : Jar;

    /// <summary>A loopback port that was free a moment ago (bind port 0).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Sends a four-letter command (ruok, srvr, mntr) and returns the answer, or null on any failure.</summary>
    public static string? FourLetterWord(int port, string command, TimeSpan timeout)
    {
        try
        {
            using var client = new TcpClient();
            var connect = client.ConnectAsync(IPAddress.Loopback, port);
            if (!connect.Wait(timeout)) return null;
            var stream = client.GetStream();
            stream.ReadTimeout = (int)timeout.TotalMilliseconds;
            stream.Write(Encoding.ASCII.GetBytes(command));
            using var reader = new StreamReader(stream, Encoding.ASCII);
            return reader.ReadToEnd();
        }
        catch
        {
            return null;
        }
    }

    /// <summary>JVM options for test servers: small heap and C1-only JIT, for a fast start on small machines.</summary>
    public static IReadOnlyList<string> FastStartJvmOptions { get; } = ["-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

    /// <summary>JVM options for benchmarks: full JIT.</summary>
    public static IReadOnlyList<string> ThroughputJvmOptions { get; } = ["-Xmx512m", "-XX:+UseParallelGC", "-Dzookeeper.nio.numWorkerThreads=0", "-Dzookeeper.digest.enabled=false"];

    internal static Process Launch(string mainClass, string configPath, string logPath, IReadOnlyList<string>? jvmOptions = null)
    {
        var java = RequireJava();
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // exec: the PID we hold is the JVM's own, so killing it by PID stops the server.
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$@\" >>\"$ZK_TEST_LOG\" 2>&1");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(java);
        foreach (var arg in (jvmOptions ?? FastStartJvmOptions).Concat(["-Dzookeeper.admin.enableServer=false",
                     "-Dzookeeper.jmx.log4j.disable=true", "-cp", ClassPath, mainClass, configPath]))
            psi.ArgumentList.Add(arg);
        psi.Environment["ZK_TEST_LOG"] = logPath;
        psi.Environment.Remove("JVMFLAGS");
        var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start java.");
        ProcessWatchdog.Guard(process);
        lock (Live)
        {
            if (!_exitHookInstalled)
            {
                _exitHookInstalled = true;
                AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllStarted();
            }
            Live.Add(process.Id);
        }
        return process;
    }

    private static readonly HashSet<int> Live = [];
    private static bool _exitHookInstalled;

    /// <summary>Safety net if a test run ends without disposing its servers: kill the JVMs this process started, by PID.</summary>
    private static void KillAllStarted()
    {
        int[] pids;
        lock (Live) pids = [.. Live];
        foreach (var pid in pids)
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
            }
            catch { /* already gone */ }
        }
    }

    internal static void Kill(Process? process)
    {
        if (process is null) return;
        lock (Live) Live.Remove(process.Id);
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(15_000);
            }
        }
        catch (InvalidOperationException) { /* already gone */ }
        process.Dispose();
    }

    internal static string LogTail(string logPath, int lines = 30)
    {
        try
        {
            return string.Join('\n', File.ReadAllLines(logPath).TakeLast(lines));
        }
        catch
        {
            return "(no log)";
        }
    }

    internal static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A standalone ZooKeeper server (ZooKeeperServerMain) in a temp data dir on a free loopback port.
/// tickTime defaults to 500 ms, so sessions can be as short as 1 s. Stop() kills the JVM by PID;
/// Start() again reuses the port and data dir. Dispose() stops it and deletes the data dir.
/// </summary>
public class LocalZooKeeperServer : IDisposable
{
    private readonly Lock _lock = new();
    private readonly IReadOnlyList<string>? _jvmOptions;
    private Process? _process;

    /// <param name="tickTime">ms; session timeouts are clamped to [2, 20] ticks.</param>
    /// <param name="start">start now and wait until it serves.</param>
    /// <param name="jvmOptions">defaults to <see cref="ZooKeeperJava.FastStartJvmOptions"/>.</param>
    public LocalZooKeeperServer(int tickTime = 500, bool start = true, IReadOnlyList<string>? jvmOptions = null)
    {
        ZooKeeperJava.RequireJava();
        _jvmOptions = jvmOptions;
        TickTime = tickTime;
        Directory = Path.Combine(Path.GetTempPath(), "zk-test-" + Guid.NewGuid().ToString("N")[..12]);
        DataDir = Path.Combine(Directory, "data");
        System.IO.Directory.CreateDirectory(DataDir);
        Port = ZooKeeperJava.FreePort();
        ConfigPath = Path.Combine(Directory, "zoo.cfg");
        File.WriteAllText(ConfigPath, ZooKeeperJava.Invariant($"""
            tickTime={tickTime}
            dataDir={DataDir}
            clientPort={Port}
            clientPortAddress=127.0.0.1
            maxSessionTimeout=60000
            maxClientCnxns=0
            admin.enableServer=false
            4lw.commands.whitelist=ruok,srvr,mntr,stat
            """));
        LogPath = Path.Combine(Directory, "server.log");
        if (start)
        {
            try { Start(); }
            catch { Dispose(); throw; }
        }
    }

    public int TickTime { get; }
    public int Port { get; }
    public string Directory { get; }
    public string DataDir { get; }
    public string ConfigPath { get; }
    public string LogPath { get; }
    public string ConnectionString => ZooKeeperJava.Invariant($"127.0.0.1:{Port}");
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public bool IsRunning
    {
        get { lock (_lock) return _process is { HasExited: false }; }
    }

    /// <summary>Starts the server (no-op if running) and waits until it serves (srvr shows a Mode).</summary>
    public void Start()
    {
        Process process;
        lock (_lock)
        {
            if (_process is { HasExited: false }) return;
            _process?.Dispose();
            _process = process = ZooKeeperJava.Launch("org.apache.zookeeper.server.ZooKeeperServerMain", ConfigPath, LogPath, _jvmOptions);
        }
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException(
                    $"ZooKeeper on port {Port} exited with {process.ExitCode} while starting. Log:\n{ZooKeeperJava.LogTail(LogPath)}");
            var ruok = ZooKeeperJava.FourLetterWord(Port, "ruok", TimeSpan.FromSeconds(2));
            if (ruok == "imok" && ZooKeeperJava.FourLetterWord(Port, "srvr", TimeSpan.FromSeconds(2)) is { } srvr && srvr.Contains("Mode:", StringComparison.Ordinal))
                return;
            if (DateTime.UtcNow > deadline)
            {
                Stop();
                throw new TimeoutException($"ZooKeeper on port {Port} did not answer 'imok' within {StartTimeout}. Log:\n{ZooKeeperJava.LogTail(LogPath)}");
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>Kills the server's JVM by PID and waits for it to exit.</summary>
    public void Stop()
    {
        Process? process;
        lock (_lock)
        {
            process = _process;
            _process = null;
        }
        ZooKeeperJava.Kill(process);
    }

    public void Dispose()
    {
        Stop();
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch { /* best effort */ }
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// A ZooKeeper ensemble of QuorumPeerMain servers on loopback (free client, quorum and election ports,
/// own data dir and myid each). The constructor waits until every node serves as leader or follower.
/// </summary>
public class LocalZooKeeperEnsemble : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Process?[] _processes;
    private readonly string[] _configs;

    public LocalZooKeeperEnsemble(int size = 3, int tickTime = 500, bool start = true)
    {
        ZooKeeperJava.RequireJava();
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size));
        TickTime = tickTime;
        Directory = Path.Combine(Path.GetTempPath(), "zk-ensemble-" + Guid.NewGuid().ToString("N")[..12]);
        var ports = new HashSet<int>();
        int Next()
        {
            while (true)
            {
                var p = ZooKeeperJava.FreePort();
                if (ports.Add(p)) return p;
            }
        }
        ClientPorts = [.. Enumerable.Range(0, size).Select(_ => Next())];
        var quorumPorts = Enumerable.Range(0, size).Select(_ => Next()).ToArray();
        var electionPorts = Enumerable.Range(0, size).Select(_ => Next()).ToArray();
        var servers = string.Join('\n', Enumerable.Range(0, size).Select(i =>
            ZooKeeperJava.Invariant($"server.{i + 1}=127.0.0.1:{quorumPorts[i]}:{electionPorts[i]}")));
        _processes = new Process?[size];
        _configs = new string[size];
        for (var i = 0; i < size; i++)
        {
            var dir = Path.Combine(Directory, ZooKeeperJava.Invariant($"node{i + 1}"));
            var dataDir = Path.Combine(dir, "data");
            System.IO.Directory.CreateDirectory(dataDir);
            File.WriteAllText(Path.Combine(dataDir, "myid"), ZooKeeperJava.Invariant($"{i + 1}\n"));
            _configs[i] = Path.Combine(dir, "zoo.cfg");
            File.WriteAllText(_configs[i], ZooKeeperJava.Invariant($"""
                tickTime={tickTime}
                initLimit=20
                syncLimit=5
                dataDir={dataDir}
                clientPort={ClientPorts[i]}
                clientPortAddress=127.0.0.1
                maxClientCnxns=0
                admin.enableServer=false
                4lw.commands.whitelist=ruok,srvr,mntr,stat
                standaloneEnabled=false
                cnxTimeout=2000
                {servers}
                """));
        }
        if (start)
        {
            try
            {
                for (var i = 0; i < size; i++) StartNode(i);
                WaitForQuorum();
            }
            catch
            {
                Dispose();
                throw;
            }
        }
    }

    public int TickTime { get; }
    public string Directory { get; }
    public IReadOnlyList<int> ClientPorts { get; }
    public int Size => ClientPorts.Count;
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3".</summary>
    public string ConnectionString => string.Join(',', Enumerable.Range(0, Size).Select(ServerAddress));

    /// <summary>"127.0.0.1:port" of node i (0-based), as it appears in ConnectionString.</summary>
    public string ServerAddress(int i) => ZooKeeperJava.Invariant($"127.0.0.1:{ClientPorts[i]}");

    /// <summary>The node index whose ServerAddress is <paramref name="address"/>, or -1.</summary>
    public int IndexOf(string? address) => Enumerable.Range(0, Size).FirstOrDefault(i => ServerAddress(i) == address, -1);

    public string LogPath(int i) => Path.Combine(Path.GetDirectoryName(_configs[i])!, "server.log");

    public bool IsRunning(int i)
    {
        lock (_lock) return _processes[i] is { HasExited: false };
    }

    /// <summary>Starts node i (no wait; call WaitForQuorum or Start(i)).</summary>
    private void StartNode(int i)
    {
        lock (_lock)
        {
            if (_processes[i] is { HasExited: false }) return;
            _processes[i]?.Dispose();
            _processes[i] = ZooKeeperJava.Launch("org.apache.zookeeper.server.quorum.QuorumPeerMain", _configs[i], LogPath(i));
        }
    }

    /// <summary>Starts node i again and waits until it serves.</summary>
    public void Start(int i)
    {
        StartNode(i);
        WaitForQuorum();
    }

    /// <summary>Kills node i's JVM by PID and waits for it to exit.</summary>
    public void Stop(int i)
    {
        Process? process;
        lock (_lock)
        {
            process = _processes[i];
            _processes[i] = null;
        }
        ZooKeeperJava.Kill(process);
    }

    /// <summary>Mode ("leader", "follower") of node i, or null when it is not serving.</summary>
    public string? Mode(int i)
    {
        var srvr = ZooKeeperJava.FourLetterWord(ClientPorts[i], "srvr", TimeSpan.FromSeconds(2));
        if (srvr is null) return null;
        foreach (var line in srvr.Split('\n'))
            if (line.StartsWith("Mode:", StringComparison.Ordinal)) return line[5..].Trim();
        return null;
    }

    /// <summary>Waits until every running node serves as leader or follower and one is leader.</summary>
    public void WaitForQuorum(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? StartTimeout);
        while (true)
        {
            var running = Enumerable.Range(0, Size).Where(IsRunning).ToArray();
            var modes = running.Select(Mode).ToArray();
            if (running.Length > Size / 2 && modes.All(m => m is "leader" or "follower") && modes.Count(m => m == "leader") == 1)
                return;
            for (var i = 0; i < Size; i++)
            {
                Process? p;
                lock (_lock) p = _processes[i];
                if (p is { HasExited: true })
                    throw new InvalidOperationException($"ZooKeeper node {i + 1} exited with {p.ExitCode}. Log:\n{ZooKeeperJava.LogTail(LogPath(i))}");
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The ZooKeeper ensemble did not form a quorum within {timeout ?? StartTimeout} (modes: {string.Join(", ", modes)}). Log of node 1:\n{ZooKeeperJava.LogTail(LogPath(0))}");
            Thread.Sleep(100);
        }
    }

    public void Dispose()
    {
        for (var i = 0; i < _processes.Length; i++) Stop(i);
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch { /* best effort */ }
        GC.SuppressFinalize(this);
    }
}
