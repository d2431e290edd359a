using System.Formats.Tar;
using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class BundleExtractorTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private string Target => scratch.PathOf("staging", "target");

    [Fact]
    public void Extracts_files_directories_and_modes()
    {
        var (bytes, sha) = new HostileBundle()
            .Directory("hooks/")
            .File("hooks/install", "#!/bin/sh\n", FormulaScratch.Executable)
            .File("./nested/deeper/file.txt", "hello")
            .Build();

        BundleExtractor.Extract(bytes, sha, Target);

        Assert.Equal(FormulaScratch.Executable, FormulaScratch.Mode(Path.Combine(Target, "hooks", "install")));
        Assert.Equal("hello", File.ReadAllText(Path.Combine(Target, "nested", "deeper", "file.txt")));
    }

    [Fact]
    public void Sha_mismatch_is_refused_before_anything_is_written()
    {
        var (bytes, _) = new HostileBundle().File("a", "a").Build();
        var wrong = new string('0', 64);

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, wrong, Target));

        Assert.Equal($"bundle sha256 mismatch: expected {wrong}, got {FormulaPacker.Sha256Hex(bytes)}", e.Message);
        Assert.False(Directory.Exists(Target));
        Assert.False(Directory.Exists(scratch.PathOf("staging")));
    }

    [Theory]
    [InlineData("../evil", "'..' segment")]
    [InlineData("hooks/../../evil", "'..' segment")]
    [InlineData("/tmp/evil", "absolute path")]
    [InlineData("hooks\\..\\..\\evil", "backslash")]
    public void Escaping_names_are_refused_and_the_target_removed(string name, string reason)
    {
        var (bytes, sha) = new HostileBundle().File("fine.txt", "ok").File(name, "pwned").Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.False(Directory.Exists(Target));
        Assert.False(File.Exists(scratch.PathOf("staging", "evil")));
        Assert.False(File.Exists(scratch.PathOf("evil")));
    }

    [Theory]
    [InlineData(TarEntryType.SymbolicLink, "../../outside")]
    [InlineData(TarEntryType.SymbolicLink, "/etc")]
    [InlineData(TarEntryType.HardLink, "/etc/passwd")]
    public void Links_are_refused(TarEntryType type, string linkTarget)
    {
        var (bytes, sha) = new HostileBundle().Link(type, "escape", linkTarget).File("escape/passwd", "x").Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.Contains("'escape'", e.Message);
        Assert.Contains("links are not allowed", e.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Theory]
    [InlineData(TarEntryType.Fifo)]
    [InlineData(TarEntryType.CharacterDevice)]
    [InlineData(TarEntryType.BlockDevice)]
    public void Special_files_are_refused(TarEntryType type)
    {
        var (bytes, sha) = new HostileBundle().Special(type, "dev").Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.Contains("device and fifo", e.Message);
    }

    [Fact]
    public void Too_many_entries_are_refused()
    {
        var bundle = new HostileBundle();
        for (var i = 0; i < 5; i++) bundle.File($"f{i}", "x");
        var (bytes, sha) = bundle.Build();

        var e = Assert.Throws<BundleRejectedException>(() =>
            BundleExtractor.Extract(bytes, sha, Target, new FormulaLimits { MaxTotalBytes = 1000, MaxEntries = 4 }));

        Assert.Contains("'f4'", e.Message);
        Assert.Contains("more than 4 entries", e.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void Too_many_bytes_are_refused_counting_across_entries()
    {
        var (bytes, sha) = new HostileBundle()
            .File("a", new string('a', 60))
            .File("b", new string('b', 60))
            .Build();

        var e = Assert.Throws<BundleRejectedException>(() =>
            BundleExtractor.Extract(bytes, sha, Target, new FormulaLimits { MaxTotalBytes = 100, MaxEntries = 10 }));

        Assert.Contains("'b'", e.Message);
        Assert.Contains("exceeds 100 bytes", e.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void Existing_empty_target_is_kept_but_emptied_on_refusal()
    {
        Directory.CreateDirectory(Target);
        var (bytes, sha) = new HostileBundle().File("ok/fine", "x").File("../evil", "x").Build();

        Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.True(Directory.Exists(Target));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Target));
    }

    [Fact]
    public void Non_empty_target_is_refused_untouched()
    {
        FormulaScratch.Write(Path.Combine(Target, "keep"), "mine");
        var (bytes, sha) = new HostileBundle().File("new", "x").Build();

        Assert.Throws<IOException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.Equal(["keep"], Directory.EnumerateFileSystemEntries(Target).Select(Path.GetFileName));
    }

    [Fact]
    public void Duplicate_file_entries_are_refused()
    {
        var (bytes, sha) = new HostileBundle().File("a", "first").File("a", "second").Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, Target));

        Assert.Contains("'a'", e.Message);
    }

    [Fact]
    public void Garbage_is_refused()
    {
        var bytes = "this is not gzip"u8.ToArray();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, FormulaPacker.Sha256Hex(bytes), Target));

        Assert.Contains("not a valid gzipped tar", e.Message);
        Assert.False(Directory.Exists(Target));
    }
}
