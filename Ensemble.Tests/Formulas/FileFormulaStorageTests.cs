using Ensemble.Tests.Support;
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
        await using var stored = await storage.OpenAsync(key);
        var copy = new MemoryStream();
        await stored.CopyToAsync(copy);
        Assert.Equal(bundle.ReadBytes(), copy.ToArray());
        await using var tail = await storage.OpenAsync(key, offset: 10);
        Assert.Equal(bundle.Size - 10, tail.Length - tail.Position);
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
        using var corrupt = bundle.WithBytes([.. bundle.ReadBytes(), 0]);

        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.PutAsync(corrupt));

        Assert.False(storage.Contains(bundle.Sha256));
    }

    [Fact]
    public async Task Missing_key_is_a_clear_file_not_found()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        var key = new string('a', 64);

        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => storage.OpenAsync(key));

        Assert.Contains(key, e.Message);
        Assert.False(storage.Contains(key));
    }

    [Fact]
    public async Task A_bundle_that_owns_its_file_is_moved_in_and_checked_where_it_lies()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        using var bundle = Bundle();
        Assert.True(bundle.OwnsFile);

        var key = await storage.MoveInAsync(bundle);

        Assert.False(File.Exists(bundle.Path));
        Assert.Equal(key, await BundleFiles.Sha256HexAsync(scratch.PathOf("store", key[..2], key + ".tar.gz")));
    }

    [Fact]
    public async Task A_moved_bundle_whose_bytes_do_not_match_is_removed_and_nothing_stored()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));
        using var bundle = Bundle();
        using var corrupt = bundle.WithBytes([.. bundle.ReadBytes(), 0]);

        await Assert.ThrowsAsync<BundleRejectedException>(() => storage.MoveInAsync(corrupt));

        Assert.False(storage.Contains(bundle.Sha256));
        Assert.False(File.Exists(corrupt.Path));
        Assert.Empty(Directory.EnumerateFiles(scratch.PathOf("store"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Keys_that_are_not_sha256_are_refused()
    {
        var storage = new FileFormulaStorage(scratch.PathOf("store"));

        Assert.False(storage.Contains("../../etc/passwd"));
        await Assert.ThrowsAsync<ArgumentException>(() => storage.OpenAsync("../../etc/passwd"));
    }
}
