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

    public void Dispose()
    {
        bundle.Dispose();
        scratch.Dispose();
    }

    private byte[] BundleBytes => File.ReadAllBytes(bundle.Path);

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
        Assert.All(results, path => Assert.Equal(BundleBytes, File.ReadAllBytes(path)));
        Assert.Equal(BundleBytes, await File.ReadAllBytesAsync(CachedPath));
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

        Assert.All(results, path => Assert.Equal(BundleBytes, File.ReadAllBytes(path)));
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

        Assert.Equal(BundleBytes, File.ReadAllBytes(again));
        Assert.Equal(1, cache.Downloads);
        Assert.Equal(1, faulty.Gets);

        // A second cache over the same directory (an agent restart) uses the file too.
        var restarted = new FormulaCache(faulty, CacheDirectory);
        Assert.Equal(BundleBytes, File.ReadAllBytes(await restarted.GetVerifiedAsync(formula)));
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

        var bytes = File.ReadAllBytes(await cache.GetVerifiedAsync(formula));

        Assert.Equal(BundleBytes, bytes);
        Assert.Equal(2, cache.Downloads);
        Assert.Equal(2, faulty.Gets);
        Assert.Equal(BundleBytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task A_truncated_cached_file_is_fetched_again()
    {
        await files.PutAsync(bundle);
        var cache = new FormulaCache(files, CacheDirectory);
        Directory.CreateDirectory(CacheDirectory);
        await File.WriteAllBytesAsync(CachedPath, BundleBytes[..(BundleBytes.Length / 2)]);

        Assert.Equal(BundleBytes, File.ReadAllBytes(await cache.GetVerifiedAsync(formula)));
        Assert.Equal(1, cache.Downloads);
        Assert.Equal(BundleBytes, await File.ReadAllBytesAsync(CachedPath));
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
        Assert.Equal(BundleBytes, File.ReadAllBytes(await cache.GetVerifiedAsync(formula)));
        Assert.Equal(2, cache.Downloads);
        Assert.Equal(BundleBytes, await File.ReadAllBytesAsync(CachedPath));
    }

    [Fact]
    public async Task A_failed_download_surfaces_and_the_next_request_retries()
    {
        await files.PutAsync(bundle);
        var faulty = new FaultyFormulaStorage(files).FailNext(1);
        var cache = new FormulaCache(faulty, CacheDirectory);

        await Assert.ThrowsAsync<IOException>(() => cache.GetVerifiedAsync(formula));
        Assert.False(File.Exists(CachedPath));

        Assert.Equal(BundleBytes, File.ReadAllBytes(await cache.GetVerifiedAsync(formula)));
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

        Assert.Equal(BundleBytes, File.ReadAllBytes(await other.WaitAsync(TimeSpan.FromSeconds(30))));
        Assert.Equal(1, cache.Downloads);
    }

    [Fact]
    public async Task A_download_cut_off_midway_resumes_where_it_stopped_and_verifies()
    {
        var large = LargeBundle(3 * 1024 * 1024);
        await files.PutAsync(large);
        var faulty = new FaultyFormulaStorage(files).InterruptNext(1, bytes: 1_000_000);
        var cache = new FormulaCache(faulty, CacheDirectory);
        var reference = new FormulaRef(large.Id, large.Sha256);

        await Assert.ThrowsAsync<IOException>(() => cache.GetVerifiedAsync(reference));
        var path = await cache.GetVerifiedAsync(reference);

        Assert.Equal([0L, 1_000_000L], faulty.Offsets);
        Assert.Equal(large.Sha256, await BundleFiles.Sha256HexAsync(path));
        Assert.Equal(1, cache.Downloads);
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(CacheDirectory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_resumed_download_of_bad_bytes_starts_again_from_nothing()
    {
        var large = LargeBundle(2 * 1024 * 1024);
        await files.PutAsync(large);
        var faulty = new FaultyFormulaStorage(files).InterruptNext(1, bytes: 500_000);
        var cache = new FormulaCache(faulty, CacheDirectory);
        var reference = new FormulaRef(large.Id, large.Sha256);
        await Assert.ThrowsAsync<IOException>(() => cache.GetVerifiedAsync(reference));
        // The part left behind is damaged (a disk error, say): the resumed fetch cannot verify.
        var part = Directory.GetFiles(CacheDirectory, "*.part").Single();
        var bytes = File.ReadAllBytes(part);
        bytes[100] ^= 0xFF;
        File.WriteAllBytes(part, bytes);

        await Assert.ThrowsAsync<BundleRejectedException>(() => cache.GetVerifiedAsync(reference));
        Assert.Empty(Directory.GetFiles(CacheDirectory));
        var path = await cache.GetVerifiedAsync(reference);

        Assert.Equal([0L, 500_000L, 0L], faulty.Offsets);
        Assert.Equal(large.Sha256, await BundleFiles.Sha256HexAsync(path));
    }

    [Fact]
    public async Task Fetching_and_checking_a_large_bundle_allocates_a_buffer_not_the_bundle()
    {
        var large = LargeBundle(40 * 1024 * 1024);
        await files.PutAsync(large);
        var cache = new FormulaCache(files, CacheDirectory);
        var reference = new FormulaRef(large.Id, large.Sha256);
        await cache.GetVerifiedAsync(reference); // once to compile the path, then measured
        File.Delete(Path.Combine(CacheDirectory, large.Sha256 + ".tar.gz"));

        // Async continuations may run on pool threads: count every thread's allocations.
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var path = await cache.GetVerifiedAsync(reference);
        await cache.GetVerifiedAsync(reference);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(large.Sha256, await BundleFiles.Sha256HexAsync(path));
        Assert.True(allocated < 4 * 1024 * 1024, $"fetching and checking a {large.Size / (1024 * 1024)} MiB bundle allocated {allocated / 1024} KiB");
    }

    /// <summary>A formula with one incompressible file of <paramref name="bytes"/>, packed.</summary>
    private FormulaBundle LargeBundle(int bytes)
    {
        var dir = TestFormulas.Write(scratch.Combine("large-repo-" + bytes), "big", 1);
        var noise = new byte[bytes];
        new Random(bytes).NextBytes(noise);
        File.WriteAllBytes(Path.Combine(dir, "blob.bin"), noise);
        return FormulaPacker.Pack(FormulaLoader.Load(dir), directory: scratch.Combine("packed"));
    }

    /// <summary>Storage whose downloads wait until the test releases them.</summary>
    private sealed class GatedStorage(IFormulaSource inner) : IFormulaSource
    {
        private int gets;

        public TaskCompletionSource<bool> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Gets => Volatile.Read(ref gets);

        public async Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default)
        {
            Interlocked.Increment(ref gets);
            Entered.TrySetResult(true);
            await Release.Task;
            return await inner.OpenAsync(key, offset, ct);
        }
    }
}
