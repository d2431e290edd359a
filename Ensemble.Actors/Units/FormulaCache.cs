using System.Collections.Concurrent;
using System.Security.Cryptography;
using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>
/// A machine's cache of formula bundles, keyed by sha256: a machine fetches a revision from formula
/// storage once, however many of its units use it. Every read is verified, so a bundle corrupted in
/// transit or on disk is refetched, never unpacked.
/// </summary>
public sealed class FormulaCache(IFormulaStorage storage, string directory)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<byte[]>>> _inFlight = new();
    private long _downloads;

    /// <summary>How many bundles this cache fetched from formula storage (failed attempts not counted).</summary>
    public long Downloads => Interlocked.Read(ref _downloads);

    public async Task<byte[]> GetVerifiedAsync(FormulaRef formula, CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(directory, formula.Sha256 + ".tar.gz");
        if (File.Exists(path))
        {
            var cached = await File.ReadAllBytesAsync(path, cancellationToken);
            if (Sha256Hex(cached) == formula.Sha256) return cached;
            File.Delete(path);
        }

        var fetch = _inFlight.GetOrAdd(formula.Sha256, _ => new Lazy<Task<byte[]>>(() => FetchAsync(formula, path)));
        try
        {
            return await fetch.Value.WaitAsync(cancellationToken);
        }
        finally
        {
            if (fetch.Value.IsCompleted) _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<byte[]>>>(formula.Sha256, fetch));
        }
    }

    private async Task<byte[]> FetchAsync(FormulaRef formula, string path)
    {
        // A fetch that finished between our caller's look at the disk and this one: no second download.
        if (File.Exists(path))
        {
            var cached = await File.ReadAllBytesAsync(path);
            if (Sha256Hex(cached) == formula.Sha256) return cached;
        }
        var bytes = await storage.GetAsync(formula.Sha256);
        Interlocked.Increment(ref _downloads);
        var actual = Sha256Hex(bytes);
        if (actual != formula.Sha256)
            throw new BundleRejectedException($"download of {formula.Id} failed verification: expected sha256 {formula.Sha256}, got {actual}");
        Directory.CreateDirectory(directory);
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        await File.WriteAllBytesAsync(temp, bytes);
        File.Move(temp, path, overwrite: true);
        return bytes;
    }

    public static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
