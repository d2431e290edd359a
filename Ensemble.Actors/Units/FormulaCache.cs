using System.Collections.Concurrent;
using System.Security.Cryptography;
using Akka.Event;
using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>
/// A machine's cache of formula bundles, keyed by sha256: a machine fetches a revision from its formula source (the
/// controller) once, however many of its units use it, and concurrent requests share one fetch. A fetch streams into
/// <c>&lt;sha256&gt;.tar.gz.part</c>, hashing as it goes, and is renamed into place only once the sha256 matches; a
/// fetch interrupted mid-way resumes from the part it left. Every read is verified, so a bundle corrupted in transit
/// or on disk is refetched, never unpacked. Memory: one buffer per fetch, whatever the bundle's size.
/// </summary>
public sealed class FormulaCache(IFormulaSource source, string directory, ILoggingAdapter? log = null)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _inFlight = new();
    private long _downloads;

    /// <summary>How many bundles this cache fetched to their end from its source, verified or not (failed attempts not counted).</summary>
    public long Downloads => Interlocked.Read(ref _downloads);

    /// <summary>Where the bundles come from, for messages.</summary>
    public string Source => source.Location;

    /// <summary>The path of the cached bundle, its sha256 checked just now; fetched first when it is not cached.</summary>
    /// <exception cref="BundleRejectedException">The fetched bytes do not match the sha256 (nothing is cached).</exception>
    /// <exception cref="IOException">The source could not be read (the caller retries).</exception>
    public async Task<string> GetVerifiedAsync(FormulaRef formula, CancellationToken cancellationToken = default)
    {
        var path = PathOf(formula);
        if (await IsVerifiedAsync(path, formula, cancellationToken)) return path;

        var fetch = _inFlight.GetOrAdd(formula.Sha256, _ => new Lazy<Task<string>>(() => FetchAsync(formula, path)));
        try
        {
            return await fetch.Value.WaitAsync(cancellationToken);
        }
        finally
        {
            if (fetch.Value.IsCompleted) _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<string>>>(formula.Sha256, fetch));
        }
    }

    private string PathOf(FormulaRef formula)
    {
        if (!BundleFiles.IsSha256(formula.Sha256))
            throw new BundleRejectedException($"'{formula.Sha256}' is not a sha256 (64 hex digits); {formula.Id} cannot be fetched");
        return Path.Combine(directory, formula.Sha256.ToLowerInvariant() + ".tar.gz");
    }

    /// <summary>True when the cached file is there with the right hash; a file with the wrong one is deleted.</summary>
    private static async Task<bool> IsVerifiedAsync(string path, FormulaRef formula, CancellationToken ct)
    {
        if (!File.Exists(path)) return false;
        try
        {
            if (string.Equals(await BundleFiles.Sha256HexAsync(path, ct), formula.Sha256, StringComparison.OrdinalIgnoreCase)) return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        File.Delete(path);
        return false;
    }

    private async Task<string> FetchAsync(FormulaRef formula, string path)
    {
        // A fetch that finished between our caller's look at the disk and this one: no second download.
        if (await IsVerifiedAsync(path, formula, CancellationToken.None)) return path;
        Directory.CreateDirectory(directory);
        var partial = path + ".part";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[BundleFiles.BufferSize];
        long size;
        await using (var output = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1))
        {
            // What an interrupted fetch left is kept: hash it and ask only for the rest.
            int read;
            while ((read = await output.ReadAsync(buffer)) > 0) hash.AppendData(buffer, 0, read);
            var resumeAt = output.Length;
            await using (var input = await source.OpenAsync(formula.Sha256, resumeAt))
            {
                while ((read = await input.ReadAsync(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await output.WriteAsync(buffer.AsMemory(0, read));
                }
            }
            size = output.Length;
        }
        Interlocked.Increment(ref _downloads);
        var actual = BundleFiles.Hex(hash);
        if (!string.Equals(actual, formula.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            // Resuming from bad bytes would never verify: the next attempt starts from nothing.
            File.Delete(partial);
            throw new BundleRejectedException($"download of {formula.Id} failed verification: expected sha256 {formula.Sha256}, got {actual}");
        }
        File.Move(partial, path, overwrite: true);
        log?.Info("fetched {0} ({1} bytes) from {2}", formula.Id, size, source.Location);
        return path;
    }

    public static string Sha256Hex(byte[] bytes) => BundleFiles.Sha256Hex(bytes);
}
