using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Ensemble.TestKit.MultiHost;

namespace Ensemble.TestKit.Postgres;

/// <summary>
/// Finds the Debian PostgreSQL server programs and prepares a cluster's data directory for a test server:
/// initdb, the settings, who may connect. Shared by <see cref="LocalPostgresServer"/> and <see cref="HostedPostgres"/>.
/// </summary>
public static class PostgresBinaries
{
    /// <summary>The OS user the server runs as when the tests run as root: postgres refuses to run as root.</summary>
    public const string ServiceUser = "postgres";

    private static readonly Lazy<string?> Found = new(FindBinDirectory);

    /// <summary>/usr/lib/postgresql/&lt;newest version&gt;/bin; throws one sentence naming the fix when PostgreSQL is not installed.</summary>
    public static string Require() => Found.Value ?? throw new InvalidOperationException(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): install the Debian package 'postgresql' " +
        "(eng/test.sh does); the PostgreSQL tests need a real server.");

    public static string Program(string name) => Path.Combine(Require(), name);

    /// <summary>True when this process is root, so the server and initdb must run as <see cref="ServiceUser"/>.</summary>
    public static bool RunAsServiceUser => Environment.IsPrivilegedProcess;

    /// <summary>The command line that runs <paramref name="program"/> as the server's user (setpriv execs, so the pid is the program's own).</summary>
    public static string[] AsServer(string program, params string[] arguments) => RunAsServiceUser
        ? [Tools.Command("setpriv"), "--reuid=" + ServiceUser, "--regid=" + ServiceUser, "--init-groups", "--", program, .. arguments]
        : [program, .. arguments];

    /// <summary>A password for the test database's user: random, so nothing else on the machine can guess it.</summary>
    public static string NewPassword() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    /// <summary>
    /// Creates <paramref name="dataDir"/> (and <paramref name="socketDir"/>) owned by the server's user and runs initdb:
    /// the superuser 'postgres' is trusted over the unix socket only (the fixture's own setup), every TCP client needs
    /// a password (scram-sha-256), from any address (a simulated host's clients come from other addresses).
    /// </summary>
    public static async Task InitializeAsync(string dataDir, string socketDir, TimeSpan timeout)
    {
        Directory.CreateDirectory(dataDir);
        Directory.CreateDirectory(socketDir);
        if (RunAsServiceUser)
        {
            // Its parents must be traversable by the server's user; temp directories are created 0700 by some tools.
            for (var dir = Path.GetDirectoryName(dataDir); dir is not null && dir != "/" && dir != Path.GetTempPath().TrimEnd('/'); dir = Path.GetDirectoryName(dir))
                File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.OtherExecute | UnixFileMode.GroupExecute);
            await RunCheckedAsync(Tools.Command("chown"), ["-R", ServiceUser + ":", dataDir, socketDir], timeout);
        }
        File.SetUnixFileMode(dataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var initdb = AsServer(Program("initdb"), "-D", dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions");
        await RunCheckedAsync(initdb[0], initdb[1..], timeout);
        await File.AppendAllTextAsync(Path.Combine(dataDir, "pg_hba.conf"), "host all all 0.0.0.0/0 scram-sha-256\n");
    }

    /// <summary>
    /// The server's command line. fsync off: a test kills the server's processes, never the machine, so what was written
    /// survives in the page cache and a restart recovers it from the WAL; commits stay synchronous.
    /// </summary>
    public static string[] ServerCommand(string dataDir, string socketDir, string listenAddress, int port) => AsServer(Program("postgres"),
        "-D", dataDir,
        "-c", "listen_addresses=" + listenAddress,
        "-c", "port=" + port.ToString(CultureInfo.InvariantCulture),
        "-c", "unix_socket_directories=" + socketDir,
        "-c", "fsync=off",
        "-c", "full_page_writes=off",
        "-c", "max_connections=200",
        "-c", "shared_buffers=32MB",
        "-c", "logging_collector=off");

    /// <summary>Creates the login role with its password and a database it owns (over the unix socket, as the superuser).</summary>
    public static Task CreateDatabaseAsync(string socketDir, int port, string database, string user, string password, TimeSpan timeout) =>
        RunCheckedAsync(Program("psql"), [
            "-h", socketDir, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q",
            "-c", $"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'",
            "-c", $"CREATE DATABASE \"{database}\" OWNER \"{user}\""], timeout);

    /// <summary>Whether the server accepts connections on the unix socket (pg_isready exit 0).</summary>
    public static async Task<bool> IsReadyAsync(string socketDir, int port)
    {
        var result = await Tools.RunAsync(Program("pg_isready"), ["-q", "-h", socketDir, "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "2"],
            TimeSpan.FromSeconds(10));
        return result.ExitCode == 0;
    }

    /// <summary>A Npgsql connection string; no pooling, so a test that kills the server does not reuse dead connections.</summary>
    public static string ConnectionString(string host, int port, string database, string user, string password) =>
        string.Create(CultureInfo.InvariantCulture, $"Host={host};Port={port};Database={database};Username={user};Password={password};Pooling=false;Timeout=5");

    internal static string LogTail(string path, int lines = 30)
    {
        try { return string.Join('\n', File.ReadLines(path).TakeLast(lines)); }
        catch (IOException) { return "(no log)"; }
    }

    private static async Task RunCheckedAsync(string fileName, string[] arguments, TimeSpan timeout)
    {
        var result = await Tools.RunAsync(fileName, arguments, timeout);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"'{Path.GetFileName(fileName)} {string.Join(' ', arguments)}' failed: {result}");
    }

    private static string? FindBinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root)) return null;
        return Directory.EnumerateDirectories(root)
            .Select(dir => (dir, version: int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1))
            .Where(d => d.version >= 0 && File.Exists(Path.Combine(d.dir, "bin", "postgres")))
            .OrderByDescending(d => d.version)
            .Select(d => Path.Combine(d.dir, "bin"))
            .FirstOrDefault();
    }

    internal static Process Launch(string[] command, string logPath)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // exec all the way down: the pid held is the postmaster's own, so its process tree is the server.
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec >>\"$0\" 2>&1 </dev/null; exec \"$@\"");
        psi.ArgumentList.Add(logPath);
        foreach (var argument in command) psi.ArgumentList.Add(argument);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start postgres.");
        ProcessWatchdog.Guard(process);
        return process;
    }
}
