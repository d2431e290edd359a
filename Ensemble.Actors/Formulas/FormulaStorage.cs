namespace Ensemble.Formulas;

/// <summary>Content-addressed store of formula bundles, keyed by their sha256.</summary>
public interface IFormulaStorage
{
    /// <summary>Stores the bundle and returns its key (its sha256); storing the same bundle again changes nothing.</summary>
    Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default);

    /// <summary>The stored bytes, unverified: the consumer must check the sha256 before unpacking.</summary>
    Task<byte[]> GetAsync(string key, CancellationToken ct = default);

    bool Contains(string key);

    /// <summary>Where the bundles are kept, for messages to an operator.</summary>
    string Location => GetType().Name;
}

/// <summary>Bundles stored as files <c>root/&lt;first two hex digits&gt;/&lt;sha256&gt;.tar.gz</c>, written atomically.</summary>
public sealed class FileFormulaStorage(string root, FormulaLimits? limits = null) : IFormulaStorage
{
    private readonly FormulaLimits limits = limits ?? FormulaLimits.Default;

    public string Root { get; } = Path.GetFullPath(root);

    public string Location => Root;

    /// <exception cref="BundleRejectedException">The bytes do not match the sha256, or are over the bundle cap.</exception>
    public async Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        if (bundle.Bytes.Length > limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle {bundle.Id} is {FormulaLimits.Size(bundle.Bytes.Length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle");
        var actual = FormulaPacker.Sha256Hex(bundle.Bytes);
        if (!string.Equals(actual, bundle.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new BundleRejectedException($"bundle {bundle.Id} sha256 mismatch: expected {bundle.Sha256}, got {actual}");

        var path = PathOf(actual);
        if (File.Exists(path)) return actual;

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Readers must never see a half-written bundle: write aside, then rename into place.
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                await output.WriteAsync(bundle.Bytes, ct).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            // Another writer may have won the race with identical bytes; replacing it is harmless.
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return actual;
    }

    /// <exception cref="BundleRejectedException">The stored file is over the bundle cap, so no packer of ours wrote it.</exception>
    public async Task<byte[]> GetAsync(string key, CancellationToken ct = default)
    {
        var path = PathOf(key);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"formula bundle {key} is not in storage at {Root}; upload it again", path, e);
        }
        await using (stream)
        {
            // Bundles are handed around whole; a file too large to be one is refused before it is read into memory.
            if (stream.Length > limits.MaxBundleBytes)
                throw new BundleRejectedException(
                    $"stored bundle {path} is {FormulaLimits.Size(stream.Length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle; delete it and deploy or upgrade the formula again");
            var bytes = new byte[stream.Length];
            await stream.ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
            return bytes;
        }
    }

    public bool Contains(string key) => File.Exists(PathOf(key));

    // The key becomes a path, so only a well-formed sha256 is accepted: no separators, no '..'.
    private string PathOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != 64 || !key.All(char.IsAsciiHexDigit))
            throw new ArgumentException($"'{key}' is not a sha256 key (64 hex digits)", nameof(key));
        var normalized = key.ToLowerInvariant();
        return Path.Combine(Root, normalized[..2], normalized + ".tar.gz");
    }
}
