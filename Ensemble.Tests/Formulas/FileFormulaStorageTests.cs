using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class FileFormulaStorageTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private FormulaBundle Bundle(int revision = 1) =>
        FormulaPacker.Pack(FormulaLoader.Load(scratch.WriteFormula($"src{revision}/mysql", revision)));

    [Fact]
    public async Task Put_then_get_returns_the_bytes_under_the_sha_key()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        var bundle = Bundle();

        var key = await storage.PutAsync(bundle);

        Assert.Equal(bundle.Sha256, key);
        Assert.True(storage.Contains(key));
        Assert.True(File.Exists(scratch.PathOf("store", key[..2], key + ".tar.gz")));
        Assert.Equal(bundle.Bytes, await storage.GetAsync(key));
    }

    [Fact]
    public async Task Putting_the_same_bundle_twice_is_a_no_op()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        var bundle = Bundle();
        var key = await storage.PutAsync(bundle);
        var path = scratch.PathOf("store", key[..2], key + ".tar.gz");
        var written = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, written);

        Assert.Equal(key, await storage.PutAsync(bundle));

        Assert.Equal(written, File.GetLastWriteTimeUtc(path));
        Assert.Equal([key + ".tar.gz"], Directory.EnumerateFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Corrupt_bundle_is_refused_and_nothing_stored()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        var bundle = Bundle();
        var corrupt = bundle with { Bytes = [.. bundle.Bytes, 0] };

        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.PutAsync(corrupt));

        Assert.False(storage.Contains(bundle.Sha256));
    }

    [Fact]
    public async Task Missing_key_is_a_clear_file_not_found()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        var key = new string('a', 64);

        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => storage.GetAsync(key));

        Assert.Contains(key, e.Message);
        Assert.False(storage.Contains(key));
    }

    [Fact]
    public void Keys_that_are_not_sha256_are_refused()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));

        Assert.Throws<ArgumentException>(() => storage.Contains("../../etc/passwd"));
    }
}
