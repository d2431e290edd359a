using System.Diagnostics;
using Ensemble.TestKit.MultiHost;

namespace Ensemble.TestKit.Postgres;

/// <summary>
/// A PostgreSQL server a test starts and owns: a cluster initialized into a temp directory, serving on a free loopback
/// port (and a unix socket inside that directory), with one database and a login user with a password.
/// <see cref="Stop"/> shuts it down cleanly, <see cref="Kill"/> SIGKILLs the postmaster and its backends; <see cref="Start"/>
/// again serves the same data on the same port. Dispose kills it and deletes the directory.
/// As root the server runs as the OS user 'postgres'.
/// </summary>
public sealed class LocalPostgresServer : IDisposable
{
    private readonly Lock _lock = new();
    private Process? _process;
    private long _startTime;

    /// <param name="start">initialize, start, create the database and user now, and wait until it serves.</param>
    public LocalPostgresServer(bool start = true, string database = "ensemble", string user = "ensemble")
    {
        PostgresBinaries.Require();
        Database = database;
        User = user;
        Password = PostgresBinaries.NewPassword();
        Directory = Path.Combine(Path.GetTempPath(), "pg-test-" + Guid.NewGuid().ToString("N")[..12]);
        DataDir = Path.Combine(Directory, "data");
        SocketDir = Path.Combine(Directory, "socket");
        LogPath = Path.Combine(Directory, "server.log");
        System.IO.Directory.CreateDirectory(Directory);
        Port = ZooKeeper.ZooKeeperJava.FreePort();
        if (start)
        {
            try { Start(); }
            catch { Dispose(); throw; }
        }
    }

    public int Port { get; }
    public string Database { get; }
    public string User { get; }
    public string Password { get; }

    /// <summary>Everything of this server: data, socket, log.</summary>
    public string Directory { get; }

    public string DataDir { get; }
    public string SocketDir { get; }
    public string LogPath { get; }
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Npgsql connection string for <see cref="User"/> on 127.0.0.1:<see cref="Port"/> (password in it, no pooling).</summary>
    public string ConnectionString => PostgresBinaries.ConnectionString("127.0.0.1", Port, Database, User, Password);

    /// <summary>The same without the password, for a client that takes it from PGPASSWORD or a passfile.</summary>
    public string ConnectionStringWithoutPassword => ConnectionString.Replace(";Password=" + Password, "", StringComparison.Ordinal);

    public bool IsRunning
    {
        get { lock (_lock) return _process is { HasExited: false }; }
    }

    /// <summary>Starts the server (initializing the cluster the first time; no-op while it runs) and waits until it serves.</summary>
    public void Start() => StartAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="Start"/>
    public async Task StartAsync()
    {
        if (IsRunning) return;
        var initialize = !File.Exists(Path.Combine(DataDir, "PG_VERSION"));
        if (initialize) await PostgresBinaries.InitializeAsync(DataDir, SocketDir, StartTimeout);
        Process process;
        lock (_lock)
        {
            _process?.Dispose();
            _process = process = PostgresBinaries.Launch(PostgresBinaries.ServerCommand(DataDir, SocketDir, "127.0.0.1", Port), LogPath);
            _startTime = ProcessTree.StartTime(process.Id);
        }
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!await PostgresBinaries.IsReadyAsync(SocketDir, Port))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"PostgreSQL on port {Port} exited with {process.ExitCode} while starting. Log:\n{PostgresBinaries.LogTail(LogPath)}");
            if (DateTime.UtcNow > deadline)
            {
                Kill();
                throw new TimeoutException($"PostgreSQL on port {Port} did not accept connections within {StartTimeout}. Log:\n{PostgresBinaries.LogTail(LogPath)}");
            }
            await Task.Delay(100);
        }
        if (initialize) await PostgresBinaries.CreateDatabaseAsync(SocketDir, Port, Database, User, Password, StartTimeout);
    }

    /// <summary>Fast shutdown (SIGINT: open transactions are rolled back, clients disconnected) and waits until it has exited.</summary>
    public void Stop()
    {
        Process? process;
        lock (_lock) process = _process;
        if (process is null || process.HasExited) return;
        ProcessTree.Signal(process.Id, 2);
        if (!process.WaitForExit(30_000)) Kill();
    }

    /// <summary>SIGKILLs the postmaster and every backend, as a crash would, and waits until they are gone.</summary>
    public void Kill()
    {
        Process? process;
        long startTime;
        lock (_lock)
        {
            process = _process;
            startTime = _startTime;
        }
        if (process is null) return;
        // The whole tree: backends outliving their postmaster would keep the old shared memory in use, and a new
        // postmaster refuses to start on the same data until they are gone.
        ProcessTree.KillTree(process.Id, startTime);
        process.WaitForExit(30_000);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (ProcessTree.IsAlive(process.Id, startTime) && DateTime.UtcNow < deadline) Thread.Sleep(20);
    }

    public void Dispose()
    {
        Kill();
        lock (_lock)
        {
            _process?.Dispose();
            _process = null;
        }
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch { /* best effort */ }
    }

    public override string ToString() => $"PostgreSQL on 127.0.0.1:{Port}";
}
