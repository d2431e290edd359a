using Ensemble.Formulas;
using Ensemble.Tests.Support;
using Ensemble.Units;
using Xunit;

namespace Ensemble.Tests.Units;

public sealed class FormulaCacheTests : IDisposable
{
    private readonly ScratchDirectory scratch = new("ensemble-cache");
    private readonly FileFormulaStorage files;
    private readonly FormulaBundle bundle;
    private readonly FormulaRef formula;

    public FormulaCacheTests()
    {
        files = new FileFormulaStorage(scratch.Combine("storage"));
        var dir = TestFormulas.Write(scratch.Combine("repo"), "mysql", 3);
        bundle = FormulaPacker.Pack(FormulaLoader.Load(dir));
        formula = new FormulaRef(bundle.Id, bundle.Sha256);
    }

    public void Dispose() => scratch.Dispose();

    private string CacheDirectory => scratch.Combine("cache");

    private string CachedPath => Path.Combine(CacheDirectory, bundle.Sha256 + ".tar.gz");

    [Fact]
    public async Task Twenty_concurrent_requests_fetch_the_bundle_once()
    {
        await files.PutAsync(bundle);
        var gated = new GatedStorage(files);
        var cache = new FormulaCache(gated, CacheDirectory);

        var requests = Enumerable.Range(0, 20).Select(_ => cache.GetVerifiedAsync(formula)).ToList();
        Assert.True(await gated.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        gated.Release.SetResult();
        var results = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, cache.Downloads);
        Assert.Equal(1, gated.Gets);
        Assert.All(results, bytes => Assert.Equal(bundle.Bytes, bytes));
        Assert.Equal(bundle.Bytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task Twenty_requests_on_twenty_threads_fetch_the_bundle_once()
    {
        await files.PutAsync(bundle);
        var cache = new FormulaCache(files, CacheDirectory);
        using var start = new ManualResetEventSlim();

        var requests = Enumerable.Range(0, 20).Select(_ => Task.Run(() =>
        {
            start.Wait(TimeSpan.FromSeconds(30));
            return cache.GetVerifiedAsync(formula);
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.All(results, bytes => Assert.Equal(bundle.Bytes, bytes));
        Assert.Equal(1, cache.Downloads);
    }

    [Fact]
    public async Task A_cached_bundle_is_served_from_disk_without_another_download()
    {
        await files.PutAsync(bundle);
        var faulty = new FaultyFormulaStorage(files);
        var cache = new FormulaCache(faulty, CacheDirectory);

        await cache.GetVerifiedAsync(formula);
        var again = await cache.GetVerifiedAsync(formula);

        Assert.Equal(bundle.Bytes, again);
        Assert.Equal(1, cache.Downloads);
        Assert.Equal(1, faulty.Gets);

        // A second cache over the same directory (an agent restart) uses the file too.
        var restarted = new FormulaCache(faulty, CacheDirectory);
        Assert.Equal(bundle.Bytes, await restarted.GetVerifiedAsync(formula));
        Assert.Equal(0, restarted.Downloads);
    }

    [Fact]
    public async Task A_corrupted_cached_file_is_detected_and_fetched_again()
    {
        await files.PutAsync(bundle);
        var faulty = new FaultyFormulaStorage(files);
        var cache = new FormulaCache(faulty, CacheDirectory);
        await cache.GetVerifiedAsync(formula);

        var onDisk = await File.ReadAllBytesAsync(CachedPath);
        onDisk[onDisk.Length / 3] ^= 0x01;
        await File.WriteAllBytesAsync(CachedPath, onDisk);

        var bytes = await cache.GetVerifiedAsync(formula);

        Assert.Equal(bundle.Bytes, bytes);
        Assert.Equal(2, cache.Downloads);
        Assert.Equal(2, faulty.Gets);
        Assert.Equal(bundle.Bytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task A_truncated_cached_file_is_fetched_again()
    {
        await files.PutAsync(bundle);
        var cache = new FormulaCache(files, CacheDirectory);
        Directory.CreateDirectory(CacheDirectory);
        await File.WriteAllBytesAsync(CachedPath, bundle.Bytes[..(bundle.Bytes.Length / 2)]);

        Assert.Equal(bundle.Bytes, await cache.GetVerifiedAsync(formula));
        Assert.Equal(1, cache.Downloads);
        Assert.Equal(bundle.Bytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task Corrupt_bytes_from_storage_are_rejected_and_nothing_is_cached()
    {
        await files.PutAsync(bundle);
        var faulty = new FaultyFormulaStorage(files).CorruptNext(1);
        var cache = new FormulaCache(faulty, CacheDirectory);

        await Assert.ThrowsAsync<BundleRejectedException>(() => cache.GetVerifiedAsync(formula));

        Assert.False(File.Exists(CachedPath));
        Assert.True(!Directory.Exists(CacheDirectory) || !Directory.EnumerateFileSystemEntries(CacheDirectory).Any(),
            "the cache directory holds something after a rejected download");

        // The rejected fetch is not remembered: the next request downloads again and succeeds.
        Assert.Equal(bundle.Bytes, await cache.GetVerifiedAsync(formula));
        Assert.Equal(2, cache.Downloads);
        Assert.Equal(bundle.Bytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task A_failed_download_surfaces_and_the_next_request_retries()
    {
        await files.PutAsync(bundle);
        var faulty = new FaultyFormulaStorage(files).FailNext(1);
        var cache = new FormulaCache(faulty, CacheDirectory);

        await Assert.ThrowsAsync<IOException>(() => cache.GetVerifiedAsync(formula));
        Assert.False(File.Exists(CachedPath));

        Assert.Equal(bundle.Bytes, await cache.GetVerifiedAsync(formula));
        Assert.Equal(2, faulty.Gets);
    }

    [Fact]
    public async Task Cancelling_a_waiting_request_does_not_cancel_the_shared_download()
    {
        await files.PutAsync(bundle);
        var gated = new GatedStorage(files);
        var cache = new FormulaCache(gated, CacheDirectory);
        using var cancel = new CancellationTokenSource();

        var cancelled = cache.GetVerifiedAsync(formula, cancel.Token);
        var other = cache.GetVerifiedAsync(formula);
        await gated.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        gated.Release.SetResult();

        Assert.Equal(bundle.Bytes, await other.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, cache.Downloads);
    }

    /// <summary>Storage whose downloads wait until the test releases them.</summary>
    private sealed class GatedStorage(IFormulaStorage inner) : IFormulaStorage
    {
        private int gets;

        public TaskCompletionSource<bool> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Gets => Volatile.Read(ref gets);

        public Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default) => inner.PutAsync(bundle, ct);

        public bool Contains(string key) => inner.Contains(key);

        public async Task<byte[]> GetAsync(string key, CancellationToken ct = default)
        {
            Interlocked.Increment(ref gets);
            Entered.TrySetResult(true);
            await Release.Task;
            return await inner.GetAsync(key, ct);
        }
    }
}
