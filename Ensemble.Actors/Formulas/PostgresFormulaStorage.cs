using System.Buffers;
using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using System.Security.Cryptography;
using Npgsql;
using NpgsqlTypes;

namespace Ensemble.Formulas;

/// <summary>
/// Formula bundles kept in the PostgreSQL database the controllers share (the store of record), so a controller that
/// has just taken over serves every revision any of them stored. Content-addressed by sha256, in rows of
/// <see cref="ChunkSize"/> bytes, each bundle written in one transaction; a bundle is visible only once committed.
/// </summary>
/// <remarks>
/// Tables (created on first use): <c>ensemble_formula_bundles(sha256, size, chunks, stored_at)</c> and
/// <c>ensemble_formula_chunks(sha256, n, bytes)</c>. A failure to reach or use the database is a
/// <see cref="FormulaStorageUnavailableException"/> (an <see cref="IOException"/>, which the upload receiver and the
/// bundle server already report as "unavailable, try again"), naming the database and what to do.
/// </remarks>
public sealed class PostgresFormulaStorage : IFormulaStorage
{
    /// <summary>The bytes of one row: big enough that a 100 MiB bundle is 100 rows, small enough to hold one at a time.</summary>
    public const int ChunkSize = 1024 * 1024;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS ensemble_formula_bundles (
            sha256 text PRIMARY KEY,
            size bigint NOT NULL,
            chunks integer NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS ensemble_formula_chunks (
            sha256 text NOT NULL,
            n integer NOT NULL,
            bytes bytea NOT NULL,
            PRIMARY KEY (sha256, n));
        """;

    // Any number: it only has to be the same for every controller, so their first uses create the tables one at a time
    // (CREATE TABLE IF NOT EXISTS races with itself on the catalog's unique index).
    private const long SchemaLock = 0x656e_7365_6d62_6c65;

    private readonly string _connectionString;
    private readonly FormulaLimits _limits;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _fills = new();
    private readonly SemaphoreSlim _schemaGate = new(1, 1);
    private volatile bool _schemaReady;

    /// <param name="connectionString">a Npgsql connection string (the password may come from PGPASSWORD or a passfile).</param>
    /// <param name="cacheDirectory">this controller's own directory: a cache of the bundles it served and the incoming uploads.</param>
    public PostgresFormulaStorage(string connectionString, string cacheDirectory, FormulaLimits? limits = null)
    {
        _connectionString = connectionString;
        _limits = limits ?? FormulaLimits.Default;
        // The cache: the bundle server opens the bundle at an offset for every 64 KiB an agent asks for, and a file
        // answers that with a seek where the database would send a whole 1 MiB row each time. It is keyed by sha256
        // and filled only from verified, committed bundles, so it can never be stale, and losing it costs one refill.
        Cache = new FileFormulaStorage(cacheDirectory, _limits);
        Location = $"{Hosting.EnsembleConfig.DescribePostgres(connectionString)} (cached in {Cache.Root})";
    }

    /// <summary>This controller's local copy of the bundles it stored or served.</summary>
    public FileFormulaStorage Cache { get; }

    /// <summary>Where uploads are written while they arrive, on this controller's disk; then they are stored in the database.</summary>
    public string IncomingDirectory => Cache.IncomingDirectory;

    public string Location { get; }

    private string Database => Hosting.EnsembleConfig.DescribePostgres(_connectionString);

    /// <exception cref="BundleRejectedException">The bytes do not match the sha256, or are over the bundle cap.</exception>
    /// <exception cref="FormulaStorageUnavailableException">The database could not be reached or failed; nothing was stored.</exception>
    public Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default) => StoreAsync(bundle, ct);

    /// <exception cref="BundleRejectedException">The bytes do not match the sha256, or are over the bundle cap.</exception>
    /// <exception cref="FormulaStorageUnavailableException">The database could not be reached or failed; nothing was stored.</exception>
    public async Task<string> MoveInAsync(FormulaBundle bundle, CancellationToken ct = default)
    {
        if (!bundle.OwnsFile) throw new ArgumentException($"bundle {bundle.Id} does not own its file {bundle.Path}; store a copy with PutAsync", nameof(bundle));
        try
        {
            var key = await StoreAsync(bundle, ct).ConfigureAwait(false);
            // Just uploaded, so soon served: the file becomes the cached copy instead of being deleted.
            await Cache.MoveInAsync(bundle, ct).ConfigureAwait(false);
            return key;
        }
        finally
        {
            bundle.Dispose();
        }
    }

    private async Task<string> StoreAsync(FormulaBundle bundle, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        if (!BundleFiles.IsSha256(bundle.Sha256))
            throw new ArgumentException($"'{bundle.Sha256}' is not a sha256 key (64 hex digits)", nameof(bundle));
        var key = bundle.Sha256.ToLowerInvariant();
        var source = new FileInfo(bundle.Path);
        if (source.Exists && source.Length > _limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle {bundle.Id} is {FormulaLimits.Size(source.Length, _limits.MaxBundleBytes)}, over the {FormulaLimits.Size(_limits.MaxBundleBytes)} limit for a compressed bundle");

        await using var input = BundleFiles.OpenRead(bundle.Path);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            return await WithDatabaseAsync("store " + bundle.Id, async connection =>
            {
                if (await ExistsAsync(connection, key, ct).ConfigureAwait(false)) return key;
                await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                await using var insert = new NpgsqlCommand(
                    "INSERT INTO ensemble_formula_chunks (sha256, n, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", connection, transaction);
                var shaParameter = new NpgsqlParameter<string>{ TypedValue = key };
                var nParameter = new NpgsqlParameter<int>();
                var bytesParameter = new NpgsqlParameter<ReadOnlyMemory<byte>> { NpgsqlDbType = NpgsqlDbType.Bytea };
                insert.Parameters.Add(shaParameter);
                insert.Parameters.Add(nParameter);
                insert.Parameters.Add(bytesParameter);
                long size = 0;
                var n = 0;
                while (true)
                {
                    var filled = await FillAsync(input, buffer, ct).ConfigureAwait(false);
                    if (filled == 0 && n > 0) break;
                    size += filled;
                    if (size > _limits.MaxBundleBytes)
                        throw new BundleRejectedException($"bundle {bundle.Id} is over the {FormulaLimits.Size(_limits.MaxBundleBytes)} limit for a compressed bundle");
                    hash.AppendData(buffer, 0, filled);
                    nParameter.TypedValue = n++;
                    bytesParameter.TypedValue = buffer.AsMemory(0, filled);
                    await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    if (filled < ChunkSize) break;
                }
                var actual = BundleFiles.Hex(hash);
                // Refused before the commit: the transaction is rolled back when disposed, so no row of it is ever seen.
                if (!string.Equals(actual, key, StringComparison.Ordinal))
                    throw new BundleRejectedException($"bundle {bundle.Id} sha256 mismatch: expected {bundle.Sha256}, got {actual}");
                await using (var record = new NpgsqlCommand(
                    "INSERT INTO ensemble_formula_bundles (sha256, size, chunks) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", connection, transaction))
                {
                    record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                    record.Parameters.Add(new NpgsqlParameter<long> { TypedValue = size });
                    record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = n });
                    await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
                await transaction.CommitAsync(ct).ConfigureAwait(false);
                return key;
            }, ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads until the buffer is full or the input ends: every row but the last holds exactly <see cref="ChunkSize"/> bytes.</summary>
    private static async Task<int> FillAsync(Stream input, byte[] buffer, CancellationToken ct)
    {
        var filled = 0;
        while (filled < ChunkSize)
        {
            var read = await input.ReadAsync(buffer.AsMemory(filled, Math.Min(BundleFiles.BufferSize, ChunkSize - filled)), ct).ConfigureAwait(false);
            if (read == 0) break;
            filled += read;
        }
        return filled;
    }

    /// <summary>
    /// The stored bytes from <paramref name="offset"/>, from the local cache; a bundle not cached yet is first read from
    /// the database into it, row by row, and verified against its sha256 on the way.
    /// </summary>
    /// <exception cref="FileNotFoundException">No bundle with that sha256 is stored.</exception>
    /// <exception cref="FormulaStorageUnavailableException">The database could not be reached or failed.</exception>
    /// <exception cref="BundleRejectedException">The stored rows do not add up to the sha256 (the database was altered).</exception>
    public async Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!BundleFiles.IsSha256(key)) throw new ArgumentException($"'{key}' is not a sha256 key (64 hex digits)", nameof(key));
        key = key.ToLowerInvariant();
        if (!Cache.Contains(key))
        {
            // Concurrent readers of one bundle share one fill; a failed fill is forgotten, so the next reader tries again.
            var fill = _fills.GetOrAdd(key, k => new Lazy<Task>(() => FillCacheAsync(k)));
            try
            {
                await fill.Value.WaitAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                if (fill.Value.IsCompleted) _fills.TryRemove(new KeyValuePair<string, Lazy<Task>>(key, fill));
            }
        }
        return await Cache.OpenAsync(key, offset, ct).ConfigureAwait(false);
    }

    private async Task FillCacheAsync(string key)
    {
        var incoming = Cache.IncomingDirectory;
        Directory.CreateDirectory(incoming);
        var temp = BundleFiles.TempPath(incoming, "fill-");
        try
        {
            var found = await WithDatabaseAsync("read bundle " + key, async connection =>
            {
                long size;
                await using (var find = new NpgsqlCommand("SELECT size FROM ensemble_formula_bundles WHERE sha256 = $1", connection))
                {
                    find.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                    if (await find.ExecuteScalarAsync().ConfigureAwait(false) is not long stored) return false;
                    size = stored;
                }
                if (size > _limits.MaxBundleBytes)
                    throw new BundleRejectedException(
                        $"stored bundle {key} in {Database} is {FormulaLimits.Size(size, _limits.MaxBundleBytes)}, over the {FormulaLimits.Size(_limits.MaxBundleBytes)} limit for a compressed bundle; deploy or upgrade the formula again");
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                await using var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1);
                await using var read = new NpgsqlCommand("SELECT bytes FROM ensemble_formula_chunks WHERE sha256 = $1 ORDER BY n", connection);
                read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                // Sequential access: each row's bytes stream from the socket to the file, never a whole row in memory.
                await using var reader = await read.ExecuteReaderAsync(CommandBehavior.SequentialAccess).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(BundleFiles.BufferSize);
                try
                {
                    while (await reader.ReadAsync().ConfigureAwait(false))
                    {
                        await using var bytes = await reader.GetStreamAsync(0).ConfigureAwait(false);
                        int got;
                        while ((got = await bytes.ReadAsync(buffer.AsMemory(0, BundleFiles.BufferSize)).ConfigureAwait(false)) > 0)
                        {
                            hash.AppendData(buffer, 0, got);
                            await output.WriteAsync(buffer.AsMemory(0, got)).ConfigureAwait(false);
                        }
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                var actual = BundleFiles.Hex(hash);
                if (actual != key || output.Length != size)
                    throw new BundleRejectedException(
                        $"stored bundle {key} in {Database} reads back as {output.Length} bytes with sha256 {actual}; the database was altered: deploy or upgrade the formula again");
                return true;
            }, CancellationToken.None).ConfigureAwait(false);
            if (!found)
                throw new FileNotFoundException($"formula bundle {key} is not in storage in {Database}; upload it again", key);
            await Cache.MoveInAsync(new FormulaBundle(new FormulaId("cached", 0), temp, key, new FileInfo(temp).Length, ownsFile: true)).ConfigureAwait(false);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Connects and creates the tables if missing: a controller checks its database once at start, so a wrong address or password stops it with one sentence.</summary>
    /// <exception cref="FormulaStorageUnavailableException">The database could not be reached or refused the login.</exception>
    public Task CheckAsync(CancellationToken ct = default) => WithDatabaseAsync("be opened", _ => Task.FromResult(true), ct);

    /// <summary>Whether the bundle is stored (committed) in the database; a cached copy answers without asking it.</summary>
    /// <exception cref="FormulaStorageUnavailableException">The database could not be reached or failed.</exception>
    public bool Contains(string key)
    {
        if (!BundleFiles.IsSha256(key)) return false;
        if (Cache.Contains(key)) return true;
        // Synchronous, as the interface is; the callers (the upload receiver, request checks) ask once per request.
        return WithDatabaseAsync("look up bundle " + key, connection => ExistsAsync(connection, key.ToLowerInvariant(), CancellationToken.None), CancellationToken.None)
            .GetAwaiter().GetResult();
    }

    private static async Task<bool> ExistsAsync(NpgsqlConnection connection, string key, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT 1 FROM ensemble_formula_bundles WHERE sha256 = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    /// <summary>Opens a connection (creating the tables the first time) and runs <paramref name="work"/>; database failures become one sentence.</summary>
    private async Task<T> WithDatabaseAsync<T>(string what, Func<NpgsqlConnection, Task<T>> work, CancellationToken ct)
    {
        try
        {
            await using var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync(ct).ConfigureAwait(false);
            if (!_schemaReady) await EnsureSchemaAsync(connection, ct).ConfigureAwait(false);
            return await work(connection).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or TimeoutException || (e is InvalidOperationException && e.InnerException is DbException or IOException))
        {
            throw new FormulaStorageUnavailableException(
                $"the formula storage in {Database} could not {what}: {e.GetBaseException().Message.TrimEnd('.')}; " +
                "check that PostgreSQL runs and this controller reaches it, then try again (nothing half-stored is ever visible)", e);
        }
    }

    private async Task EnsureSchemaAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await _schemaGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_schemaReady) return;
            await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (var command = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({SchemaLock}); {Schema}", connection, transaction))
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            await transaction.CommitAsync(ct).ConfigureAwait(false);
            _schemaReady = true;
        }
        finally
        {
            _schemaGate.Release();
        }
    }
}

/// <summary>The formula storage's database could not be reached or failed; the message names it and what to do.</summary>
public sealed class FormulaStorageUnavailableException(string message, Exception inner) : IOException(message, inner);
