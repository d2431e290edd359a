namespace Ensemble.Formulas;

/// <summary>Where a machine's formula cache fetches bundles from, by sha256: the controller's storage, near or far.</summary>
public interface IFormulaSource
{
    /// <summary>
    /// The stored bytes from <paramref name="offset"/> to the end, unverified: the consumer checks the sha256 before
    /// unpacking. An offset at or past the end gives an empty stream.
    /// </summary>
    /// <exception cref="FileNotFoundException">No bundle with that sha256 is stored.</exception>
    Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default);

    /// <summary>Where the bundles come from, for messages to an operator.</summary>
    string Location => GetType().Name;
}

/// <summary>Content-addressed store of formula bundles, keyed by their sha256: the controller's formula storage.</summary>
public interface IFormulaStorage : IFormulaSource
{
    /// <summary>
    /// Stores a copy of the bundle and returns its key (its sha256), verifying the bytes against the sha256 as they
    /// are read; storing the same bundle again changes nothing.
    /// </summary>
    Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default);

    /// <summary>
    /// Stores the bundle by moving its file in (it must own it, e.g. an upload just received), checked where it then
    /// lies; the bundle's file is gone afterwards, stored or refused. Falls back to a copy across file systems.
    /// </summary>
    Task<string> MoveInAsync(FormulaBundle bundle, CancellationToken ct = default);

    bool Contains(string key);
}

/// <summary>
/// Bundles stored as files <c>root/&lt;first two hex digits&gt;/&lt;sha256&gt;.tar.gz</c>, written atomically; uploads
/// being received wait in <c>root/incoming/</c>.
/// </summary>
public sealed class FileFormulaStorage(string root, FormulaLimits? limits = null) : IFormulaStorage
{
    private readonly FormulaLimits limits = limits ?? FormulaLimits.Default;

    public string Root { get; } = Path.GetFullPath(root);

    public string Location => Root;

    /// <summary>Where uploads are written while they arrive; on the same file system, so a verified one is renamed into place.</summary>
    public string IncomingDirectory => Path.Combine(Root, "incoming");

    /// <exception cref="BundleRejectedException">The bytes do not match the sha256, or are over the bundle cap.</exception>
    public Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default) => StoreAsync(bundle, move: false, ct);

    /// <exception cref="BundleRejectedException">The bytes do not match the sha256, or are over the bundle cap.</exception>
    public async Task<string> MoveInAsync(FormulaBundle bundle, CancellationToken ct = default)
    {
        if (!bundle.OwnsFile) throw new ArgumentException($"bundle {bundle.Id} does not own its file {bundle.Path}; store a copy with PutAsync", nameof(bundle));
        try
        {
            return await StoreAsync(bundle, move: true, ct);
        }
        finally
        {
            bundle.Dispose();
        }
    }

    private async Task<string> StoreAsync(FormulaBundle bundle, bool move, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var source = new FileInfo(bundle.Path);
        if (source.Exists && source.Length > limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle {bundle.Id} is {FormulaLimits.Size(source.Length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle");
        var path = PathOf(bundle.Sha256);
        if (File.Exists(path)) return Key(bundle.Sha256);

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Readers must never see a half-written bundle: write aside, then rename into place.
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            string actual;
            if (move && TryMove(bundle.Path, temp))
            {
                // A temporary file of our own, on this file system: checked where it now lies, never copied.
                actual = await BundleFiles.Sha256HexAsync(temp, ct).ConfigureAwait(false);
            }
            else
            {
                actual = await CopyHashingAsync(bundle.Path, temp, ct).ConfigureAwait(false);
            }
            if (!string.Equals(actual, bundle.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new BundleRejectedException($"bundle {bundle.Id} sha256 mismatch: expected {bundle.Sha256}, got {actual}");
            // Another writer may have won the race with identical bytes; replacing it is harmless.
            File.Move(temp, path, overwrite: true);
            return actual;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static bool TryMove(string from, string to)
    {
        try
        {
            File.Move(from, to);
            return true;
        }
        catch (IOException)
        {
            return false; // another file system: copy instead
        }
    }

    private static async Task<string> CopyHashingAsync(string from, string to, CancellationToken ct)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[BundleFiles.BufferSize];
        await using var input = BundleFiles.OpenRead(from);
        await using (var output = new FileStream(to, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1))
        {
            int read;
            while ((read = await input.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
            }
            output.Flush(flushToDisk: true);
        }
        return BundleFiles.Hex(hash);
    }

    /// <exception cref="BundleRejectedException">The stored file is over the bundle cap, so no packer of ours wrote it.</exception>
    public Task<Stream> OpenAsync(string key, long offset = 0, CancellationToken ct = default)
    {
        var path = PathOf(key);
        FileStream stream;
        try
        {
            stream = BundleFiles.OpenRead(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"formula bundle {key} is not in storage at {Root}; upload it again", path, e);
        }
        var length = stream.Length;
        if (length > limits.MaxBundleBytes)
        {
            stream.Dispose();
            throw new BundleRejectedException(
                $"stored bundle {path} is {FormulaLimits.Size(length, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle; delete it and deploy or upgrade the formula again");
        }
        stream.Position = Math.Min(Math.Max(0, offset), stream.Length);
        return Task.FromResult<Stream>(stream);
    }

    /// <summary>The stored bundle's file, or null; for readers on this node that want the file itself.</summary>
    public string? FileOf(string key) => File.Exists(PathOf(key)) ? PathOf(key) : null;

    public bool Contains(string key) => BundleFiles.IsSha256(key) && File.Exists(PathOf(key));

    private static string Key(string sha256) => sha256.ToLowerInvariant();

    // The key becomes a path, so only a well-formed sha256 is accepted: no separators, no '..'.
    private string PathOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!BundleFiles.IsSha256(key))
            throw new ArgumentException($"'{key}' is not a sha256 key (64 hex digits)", nameof(key));
        var normalized = key.ToLowerInvariant();
        return Path.Combine(Root, normalized[..2], normalized + ".tar.gz");
    }
}
