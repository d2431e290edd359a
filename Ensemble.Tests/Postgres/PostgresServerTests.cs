using System.Globalization;
using Ensemble.TestKit.MultiHost;
using Ensemble.TestKit.Postgres;
using Npgsql;
using Xunit;

namespace Ensemble.Tests.Postgres;

/// <summary>The test kit's PostgreSQL servers: a password login over TCP, data that survives kill -9 and a restart on the same port, nothing left behind.</summary>
public sealed class PostgresServerTests
{
    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_local_server_keeps_its_data_across_kill_and_stop_on_the_same_port_and_dispose_removes_it()
    {
        string directory;
        using (var server = new LocalPostgresServer())
        {
            directory = server.Directory;
            await ScalarAsync(server.ConnectionString, "CREATE TABLE notes(n int); INSERT INTO notes VALUES (1), (2); SELECT 0");

            var port = server.Port;
            server.Kill();
            Assert.False(server.IsRunning);
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync(server.ConnectionString, "SELECT 1"));

            await server.StartAsync();
            Assert.Equal(port, server.Port);
            Assert.Equal(2, await ScalarAsync(server.ConnectionString, "SELECT count(*) FROM notes"));

            server.Stop();
            server.Start();
            Assert.Equal(3, await ScalarAsync(server.ConnectionString, "INSERT INTO notes VALUES (3); SELECT count(*) FROM notes"));

            // The password is what lets a TCP client in.
            var wrong = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Password = "wrong" }.ConnectionString;
            var refused = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(wrong, "SELECT 1"));
            Assert.Equal("28P01", refused.SqlState);
        }
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task A_hosted_server_serves_clients_on_other_hosts_and_comes_back_after_kill_9_with_its_data()
    {
        await using var network = await SimulatedNetwork.CreateAsync();
        var (db, client) = (await network.AddHostAsync("db"), await network.AddHostAsync("client"));
        var postgres = await db.StartPostgresAsync();
        var psql = PostgresBinaries.Program("psql");
        Task<HostCommandResult> Query(string sql) => client.RunAsync(psql,
            ["-h", db.Address, "-p", postgres.Port.ToString(CultureInfo.InvariantCulture), "-U", postgres.User, "-d", postgres.Database,
             "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            environment: new Dictionary<string, string?> { ["PGPASSWORD"] = postgres.Password, ["PGCONNECT_TIMEOUT"] = "3" });

        var created = await Query("CREATE TABLE notes(n int); INSERT INTO notes VALUES (7)");
        Assert.True(created.ExitCode == 0, created.ToString());

        await postgres.KillAsync();
        Assert.False(postgres.IsRunning);
        Assert.NotEqual(0, (await Query("SELECT 1")).ExitCode);

        await postgres.StartAsync();
        var read = await Query("SELECT n FROM notes");
        Assert.True(read.ExitCode == 0, read.ToString());
        Assert.Equal("7", read.Stdout.Trim());
        Assert.Contains($"Host={db.Address};Port={postgres.Port}", postgres.ConnectionString, StringComparison.Ordinal);
    }
}
