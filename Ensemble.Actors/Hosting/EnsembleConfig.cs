using Akka.Configuration;
using Akka.Persistence.Sql;
using Ensemble.Services;
using Ensemble.Units;

namespace Ensemble.Hosting;

/// <summary>Builds node configuration: the caller's HOCON over the embedded reference.conf, over the plugins' defaults.</summary>
public static class EnsembleConfig
{
    private static readonly Lazy<Config> Reference = new(() =>
    {
        using var stream = typeof(EnsembleConfig).Assembly.GetManifestResourceStream("Ensemble.reference.conf")
            ?? throw new InvalidOperationException("embedded reference.conf is missing from Ensemble.Actors");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    private static readonly Lazy<Config> PostgresDefaults = new(() =>
    {
        using var stream = typeof(EnsembleConfig).Assembly.GetManifestResourceStream("Ensemble.persistence-postgresql.conf")
            ?? throw new InvalidOperationException("embedded persistence-postgresql.conf is missing from Ensemble.Actors");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    /// <summary>The library defaults alone.</summary>
    public static Config Defaults => Reference.Value.WithFallback(SqlPersistence.DefaultConfiguration);

    /// <summary>Configuration for a node whose coordinators journal to the SQLite file at <paramref name="journalPath"/>.</summary>
    public static Config ForSqliteJournal(string journalPath, Config? overrides = null)
    {
        PrepareSqliteJournal(journalPath);
        var connection = $"Data Source={journalPath};Pooling=true";
        var persistence = ConfigurationFactory.ParseString($$"""
            akka.persistence.journal.sql.connection-string = "{{connection}}"
            akka.persistence.snapshot-store.sql.connection-string = "{{connection}}"
            akka.persistence.query.journal.sql.connection-string = "{{connection}}"
            """);
        return (overrides ?? Config.Empty).WithFallback(persistence).WithFallback(Defaults);
    }

    /// <summary>
    /// Configuration for a node whose coordinators journal to the PostgreSQL database <paramref name="connectionString"/>
    /// names (a Npgsql connection string; the password may come from PGPASSWORD or a passfile instead).
    /// </summary>
    public static Config ForPostgresJournal(string connectionString, Config? overrides = null)
    {
        var quoted = Quote(connectionString);
        var persistence = ConfigurationFactory.ParseString($$"""
            akka.persistence.journal.sql.connection-string = {{quoted}}
            akka.persistence.snapshot-store.sql.connection-string = {{quoted}}
            akka.persistence.query.journal.sql.connection-string = {{quoted}}
            """);
        return (overrides ?? Config.Empty).WithFallback(persistence).WithFallback(PostgresDefaults.Value).WithFallback(Defaults);
    }

    /// <summary>The journal of a node: PostgreSQL when <paramref name="journal"/> is a connection string, else the SQLite file at <paramref name="sqlitePath"/>.</summary>
    public static Config ForJournal(string? journal, string sqlitePath, Config? overrides = null) =>
        journal is null ? ForSqliteJournal(sqlitePath, overrides) : ForPostgresJournal(journal, overrides);

    /// <summary>
    /// How messages name a PostgreSQL database: "PostgreSQL database 'ensemble' on 10.0.0.9:5432" — never the password.
    /// </summary>
    public static string DescribePostgres(string connectionString)
    {
        try
        {
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
            return $"PostgreSQL database '{builder.Database ?? builder.Username ?? "?"}' on {builder.Host}:{builder.Port}";
        }
        catch (ArgumentException)
        {
            return "the PostgreSQL database (its connection string does not parse)";
        }
    }

    /// <summary>A HOCON string literal: connection strings hold ';', '=' and maybe quotes.</summary>
    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    public static ControllerSettings ControllerSettings(Config config) => new(
        config.GetTimeSpan("ensemble.controller.unit-upgrade-deadline"),
        config.GetTimeSpan("ensemble.controller.agent-resend-interval"),
        new RequestLimits(
            config.GetInt("ensemble.limits.units-per-request"),
            config.GetInt("ensemble.limits.units-per-service"),
            config.GetInt("ensemble.limits.services-per-environment"),
            config.GetInt("ensemble.limits.max-revision"),
            config.GetInt("ensemble.limits.repository-path-length")),
        config.GetInt("ensemble.controller.snapshot-every", JournalHygiene.DefaultSnapshotEvery));

    public static AgentSettings AgentSettings(Config config) => new(
        config.GetTimeSpan("ensemble.agent.hook-timeout"),
        new DownloadRetryPolicy(
            config.GetInt("ensemble.agent.download-retry.max-attempts"),
            config.GetTimeSpan("ensemble.agent.download-retry.min-backoff"),
            config.GetTimeSpan("ensemble.agent.download-retry.max-backoff")),
            config.GetInt("ensemble.agent.max-parallel-hooks", 0));

    /// <summary>
    /// Puts the journal file in write-ahead-log mode (a setting the file keeps). In SQLite's default
    /// rollback mode every journal write locks out the recovery reads of new sagas, and
    /// Microsoft.Data.Sqlite answers a locked database by sleeping and retrying: hundreds of milliseconds
    /// per unit in a large upgrade. In WAL mode readers and the single writer do not block each other.
    /// </summary>
    public static void PrepareSqliteJournal(string journalPath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(journalPath))!);
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={journalPath};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }
}
