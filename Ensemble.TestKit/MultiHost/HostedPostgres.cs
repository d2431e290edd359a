using System.Globalization;
using Ensemble.TestKit.Postgres;

namespace Ensemble.TestKit.MultiHost;

/// <summary>
/// A real PostgreSQL server (the Debian package's) running on a simulated host and serving on that host's address,
/// with one database and a login user with a password: the database several controllers share. It can be killed and
/// started again with the same data and port; the network's dispose ends it (its data lives in the host's data root).
/// </summary>
public sealed class HostedPostgres
{
    private HostProcess? _process;

    private HostedPostgres(SimulatedHost host, int port, string database, string user)
    {
        Host = host;
        Port = port;
        Database = database;
        User = user;
        Password = PostgresBinaries.NewPassword();
        Directory = Path.Combine(host.DataRoot, string.Create(CultureInfo.InvariantCulture, $"postgres-{port}"));
        DataDir = Path.Combine(Directory, "data");
        SocketDir = Path.Combine(Directory, "socket");
    }

    public SimulatedHost Host { get; }
    public int Port { get; }
    public string Database { get; }
    public string User { get; }
    public string Password { get; }

    /// <summary>Its data and socket, on its host.</summary>
    public string Directory { get; }

    public string DataDir { get; }
    public string SocketDir { get; }

    /// <summary>Npgsql connection string for clients on the other hosts: the host's address, the password in it, no pooling.</summary>
    public string ConnectionString => PostgresBinaries.ConnectionString(Host.Address, Port, Database, User, Password);

    /// <summary>The same without the password, for a client that takes it from PGPASSWORD or a passfile.</summary>
    public string ConnectionStringWithoutPassword => ConnectionString.Replace(";Password=" + Password, "", StringComparison.Ordinal);

    /// <summary>The postmaster while it runs (its output holds the server log).</summary>
    public HostProcess Process => _process ?? throw new InvalidOperationException("The PostgreSQL server has not been started.");

    public bool IsRunning => _process is { HasExited: false };

    internal static async Task<HostedPostgres> StartAsync(SimulatedHost host, int port, string database, string user, TimeSpan timeout)
    {
        var server = new HostedPostgres(host, port, database, user);
        await PostgresBinaries.InitializeAsync(server.DataDir, server.SocketDir, timeout);
        await server.StartAsync(timeout);
        await PostgresBinaries.CreateDatabaseAsync(server.SocketDir, port, database, user, server.Password, timeout);
        return server;
    }

    /// <summary>Starts the server (again, with the same data and port) unless it runs, and waits until it serves on the host's address.</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        if (IsRunning) return;
        var command = PostgresBinaries.ServerCommand(DataDir, SocketDir, Host.Address, Port);
        _process = Host.Start(command[0], command[1..], name: string.Create(CultureInfo.InvariantCulture, $"postgres-{Port}"));
        await WaitUntilServingAsync(timeout ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILLs the postmaster and its backends (kill -9) and waits until they are gone: clients see their connections drop.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill(entireTree: true);
        await _process.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Waits until pg_isready, run on its own host, reaches it over TCP on the host's address.</summary>
    public async Task WaitUntilServingAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Process.HasExited)
                throw new InvalidOperationException($"PostgreSQL on {Host.Name} exited with {Process.ExitCode} while starting. Log:\n{Process.Tail()}");
            try
            {
                var ready = await Host.RunAsync(PostgresBinaries.Program("pg_isready"),
                    ["-q", "-h", Host.Address, "-p", Port.ToString(CultureInfo.InvariantCulture), "-t", "2"], timeout: TimeSpan.FromSeconds(10));
                if (ready.ExitCode == 0) return;
            }
            catch (TimeoutException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"PostgreSQL on {Host.Address}:{Port} did not serve within {timeout}. Log:\n{Process.Tail()}");
            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }

    public override string ToString() => $"PostgreSQL on {Host.Address}:{Port}";
}
