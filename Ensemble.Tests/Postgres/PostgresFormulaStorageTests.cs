using Ensemble.Formulas;
using Ensemble.Tests.Formulas;
using Ensemble.Tests.Support;
using Ensemble.TestKit.Postgres;
using Npgsql;
using Xunit;

namespace Ensemble.Tests.Postgres;

/// <summary>One PostgreSQL server for a test class; each storage gets a schema of its own, so tests do not see each other's bundles.</summary>
public sealed class PostgresFixture : IDisposable
{
    public LocalPostgresServer Server { get; } = new();

    /// <summary>A connection string whose tables land in a new, empty schema.</summary>
    public string FreshSchema()
    {
        var schema = "t_" + Guid.NewGuid().ToString("N")[..12];
        using var connection = new NpgsqlConnection(Server.ConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
        command.ExecuteNonQuery();
        return new NpgsqlConnectionStringBuilder(Server.ConnectionString) { SearchPath = schema }.ConnectionString;
    }

    public static long Count(string connectionString, string sql)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public void Dispose() => Server.Dispose();
}

/// <summary>The formula storage contract, and what sharing one database between controllers adds to it.</summary>
public sealed class PostgresFormulaStorageTests(PostgresFixture postgres) : FormulaStorageContract, IClassFixture<PostgresFixture>
{
    protected override IFormulaStorage NewStorage() => NewStorage(postgres.FreshSchema());

    private PostgresFormulaStorage NewStorage(string connectionString) =>
        new(connectionString, Scratch.PathOf("controller-" + Guid.NewGuid().ToString("N")[..8]));

    private FormulaBundle Bundle(int revision = 1) =>
        FormulaPacker.Pack(FormulaLoader.Load(Scratch.WriteFormula($"pg{revision}/mysql", revision)));

    [Fact]
    public async Task A_controller_that_never_saw_a_bundle_serves_it_from_the_database_another_stored_it_in()
    {
        var database = postgres.FreshSchema();
        var first = NewStorage(database);
        var second = NewStorage(database);
        using var bundle = Bundle();
        var bytes = bundle.ReadBytes();

        var key = await first.MoveInAsync(bundle);

        Assert.True(second.Contains(key));
        Assert.False(second.Cache.Contains(key));
        await using (var stored = await second.OpenAsync(key, offset: 3))
        {
            var copy = new MemoryStream();
            await stored.CopyToAsync(copy);
            Assert.Equal(bytes[3..], copy.ToArray());
        }
        // Read once from the database, verified, then served from this controller's disk.
        Assert.True(second.Cache.Contains(key));
        Assert.Equal(1, PostgresFixture.Count(database, "SELECT count(*) FROM ensemble_formula_bundles"));
    }

    [Fact]
    public async Task A_refused_bundle_leaves_no_row_behind()
    {
        var database = postgres.FreshSchema();
        var storage = NewStorage(database);
        using var bundle = Bundle();
        using var corrupt = bundle.WithBytes([.. bundle.ReadBytes(), 0]);

        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.PutAsync(corrupt));

        Assert.Equal(0, PostgresFixture.Count(database, "SELECT count(*) FROM ensemble_formula_chunks"));
        Assert.Equal(0, PostgresFixture.Count(database, "SELECT count(*) FROM ensemble_formula_bundles"));
    }

    [Fact]
    public async Task While_the_database_is_down_storing_fails_with_a_sentence_naming_it_and_works_again_after()
    {
        var database = postgres.FreshSchema();
        var storage = NewStorage(database);
        using var bundle = Bundle();

        postgres.Server.Kill();
        try
        {
            var down = await Assert.ThrowsAsync<FormulaStorageUnavailableException>(() => storage.PutAsync(bundle));
            Assert.Contains($"PostgreSQL database 'ensemble' on 127.0.0.1:{postgres.Server.Port}", down.Message, StringComparison.Ordinal);
            Assert.Contains("try again", down.Message, StringComparison.Ordinal);
            Assert.IsAssignableFrom<IOException>(down);
            Assert.Throws<FormulaStorageUnavailableException>(() => storage.Contains(bundle.Sha256));
            Assert.DoesNotContain(postgres.Server.Password, down.Message, StringComparison.Ordinal);
        }
        finally
        {
            await postgres.Server.StartAsync();
        }

        Assert.False(storage.Contains(bundle.Sha256));
        var key = await storage.PutAsync(bundle);
        Assert.True(NewStorage(database).Contains(key));
    }

    [Fact]
    public async Task Rows_altered_in_the_database_are_refused_when_read_back()
    {
        var database = postgres.FreshSchema();
        using var bundle = Bundle();
        var key = await NewStorage(database).PutAsync(bundle);
        PostgresFixture.Count(database, "UPDATE ensemble_formula_chunks SET bytes = bytes || '\\x00'::bytea; SELECT 0");

        var fresh = NewStorage(database);
        await Assert.ThrowsAsync<BundleRejectedException>(() => fresh.OpenAsync(key));
        Assert.False(fresh.Cache.Contains(key));
    }
}
