using System.Security.Cryptography;
using Ensemble.Formulas;
using Ensemble.Tests.Support;
using Xunit;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// What every controller formula storage does, whatever holds the bytes: run for the files of a single controller and
/// for the PostgreSQL database controllers share.
/// </summary>
public abstract class FormulaStorageContract : IDisposable
{
    private protected readonly FormulaScratch Scratch = new();

    /// <summary>A fresh, empty storage (its own directory, its own database schema).</summary>
    protected abstract IFormulaStorage NewStorage();

    public virtual void Dispose()
    {
        Scratch.Dispose();
        GC.SuppressFinalize(this);
    }

    private FormulaBundle Bundle(int revision = 1) =>
        FormulaPacker.Pack(FormulaLoader.Load(Scratch.WriteFormula($"src{revision}/mysql", revision)));

    private static async Task<byte[]> ReadAllAsync(IFormulaStorage storage, string key, long offset = 0)
    {
        await using var stored = await storage.OpenAsync(key, offset);
        var copy = new MemoryStream();
        await stored.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task A_stored_bundle_is_read_back_under_its_sha256_from_any_offset()
    {
        var storage = NewStorage();
        using var bundle = Bundle();

        var key = await storage.PutAsync(bundle);

        Assert.Equal(bundle.Sha256, key);
        Assert.True(storage.Contains(key));
        Assert.Equal(bundle.ReadBytes(), await ReadAllAsync(storage, key));
        Assert.Equal(bundle.ReadBytes()[10..], await ReadAllAsync(storage, key, offset: 10));
        Assert.Empty(await ReadAllAsync(storage, key, offset: bundle.Size + 5));
    }

    [Fact]
    public async Task Storing_the_same_bundle_twice_keeps_one_copy()
    {
        var storage = NewStorage();
        using var bundle = Bundle();

        var key = await storage.PutAsync(bundle);
        Assert.Equal(key, await storage.PutAsync(bundle));

        Assert.Equal(bundle.ReadBytes(), await ReadAllAsync(storage, key));
    }

    [Fact]
    public async Task Bytes_that_do_not_match_the_sha256_are_refused_and_nothing_is_stored()
    {
        var storage = NewStorage();
        using var bundle = Bundle();
        using var corrupt = bundle.WithBytes([.. bundle.ReadBytes(), 0]);

        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.PutAsync(corrupt));

        Assert.False(storage.Contains(bundle.Sha256));
        await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenAsync(bundle.Sha256));
    }

    [Fact]
    public async Task A_moved_in_bundle_is_stored_and_its_file_gone_and_a_wrong_one_is_refused_and_gone_too()
    {
        var storage = NewStorage();
        using var bundle = Bundle();
        using var corrupt = Bundle(2).WithBytes([.. bundle.ReadBytes(), 0]);
        var bytes = bundle.ReadBytes();

        var key = await storage.MoveInAsync(bundle);
        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.MoveInAsync(corrupt));

        Assert.False(File.Exists(bundle.Path));
        Assert.False(File.Exists(corrupt.Path));
        Assert.Equal(bytes, await ReadAllAsync(storage, key));
        Assert.False(storage.Contains(corrupt.Sha256));
    }

    [Fact]
    public async Task An_unknown_key_is_a_file_not_found_naming_it_and_a_malformed_key_is_refused()
    {
        var storage = NewStorage();
        var key = new string('a', 64);

        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenAsync(key));

        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.False(storage.Contains(key));
        Assert.False(storage.Contains("../../etc/passwd"));
        await Assert.ThrowsAsync<ArgumentException>(() => storage.OpenAsync("../../etc/passwd"));
    }

    [Fact]
    public async Task A_100_MiB_bundle_is_stored_and_read_with_bounded_memory()
    {
        const int size = 100 * 1024 * 1024;
        var path = Scratch.PathOf("large.tar.gz");
        string sha;
        // Random bytes: what matters here is the size, and storage checks the sha256, never the archive.
        await using (var file = File.Create(path))
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            var block = new byte[64 * 1024];
            for (var written = 0; written < size; written += block.Length)
            {
                RandomNumberGenerator.Fill(block);
                hash.AppendData(block);
                await file.WriteAsync(block);
            }
            sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        var storage = NewStorage();
        using var bundle = new FormulaBundle(new FormulaId("large", 1), path, sha, size);

        GC.Collect();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(false));
                await Task.Delay(5);
            }
        });

        var key = await storage.PutAsync(bundle);
        long read = 0;
        await using (var stored = await storage.OpenAsync(key, offset: 1000))
        {
            var buffer = new byte[64 * 1024];
            int got;
            while ((got = await stored.ReadAsync(buffer)) > 0) read += got;
        }
        await sampling.CancelAsync();
        await sampler;

        Assert.Equal(size - 1000, read);
        // A few chunk buffers, never the bundle: a quarter of its size is far above the former, far below the latter.
        Assert.True(peak - baseline < size / 4, $"the managed heap grew by {(peak - baseline) / (1024 * 1024)} MiB for a {size / (1024 * 1024)} MiB bundle");
    }
}

/// <summary>The contract, for the files of a single controller.</summary>
public sealed class FileFormulaStorageContractTests : FormulaStorageContract
{
    protected override IFormulaStorage NewStorage() => new FileFormulaStorage(Scratch.PathOf("store-" + Guid.NewGuid().ToString("N")[..8]));
}
