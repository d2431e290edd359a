using Ensemble.Tests.Support;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

public sealed class FormulaPackerTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Same_content_packs_to_same_bytes_regardless_of_creation_order_and_times()
    {
        var first = scratch.PathOf("a", "mysql");
        FormulaScratch.Write(Path.Combine(first, "metadata.yaml"), "name: mysql\nrevision: 1\n");
        FormulaScratch.Write(Path.Combine(first, "hooks", "install"), "#!/bin/sh\n", FormulaScratch.Executable);
        FormulaScratch.Write(Path.Combine(first, "hooks", "start"), "#!/bin/sh\nstart\n", FormulaScratch.Executable);
        FormulaScratch.Write(Path.Combine(first, "templates", "my.cnf"), "[mysqld]\n");

        var second = scratch.PathOf("b", "mysql");
        FormulaScratch.Write(Path.Combine(second, "templates", "my.cnf"), "[mysqld]\n");
        FormulaScratch.Write(Path.Combine(second, "hooks", "start"), "#!/bin/sh\nstart\n", FormulaScratch.Executable);
        FormulaScratch.Write(Path.Combine(second, "hooks", "install"), "#!/bin/sh\n", FormulaScratch.Executable);
        FormulaScratch.Write(Path.Combine(second, "metadata.yaml"), "name: mysql\nrevision: 1\n");
        foreach (var path in Directory.EnumerateFileSystemEntries(second, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(path, new DateTime(2011, 11, 11, 11, 11, 11, DateTimeKind.Utc));
        Directory.CreateDirectory(Path.Combine(second, ".git", "objects"));
        File.WriteAllText(Path.Combine(second, ".git", "HEAD"), "ref: refs/heads/main\n");

        var one = FormulaPacker.Pack(FormulaLoader.Load(first));
        var two = FormulaPacker.Pack(FormulaLoader.Load(second));

        Assert.Equal(one.ReadBytes(), two.ReadBytes());
        Assert.Equal(one.Sha256, two.Sha256);
        Assert.Matches("^[0-9a-f]{64}$", one.Sha256);
        Assert.Equal(new FormulaId("mysql", 1), one.Id);
        Assert.Equal(one.ReadBytes(), FormulaPacker.Pack(FormulaLoader.Load(first)).ReadBytes());
    }

    [Fact]
    public void Archive_is_sorted_normalized_and_keeps_modes()
    {
        var dir = scratch.WriteFormula("mysql", 1);
        FormulaScratch.Write(Path.Combine(dir, "hooks-notes.txt"), "notes\n");

        var entries = ReadEntries(FormulaPacker.Pack(FormulaLoader.Load(dir)).ReadBytes());

        Assert.Equal(["hooks-notes.txt", "hooks/", "hooks/install", "metadata.yaml"], entries.Select(e => e.Name));
        Assert.All(entries, e =>
        {
            Assert.Equal(DateTimeOffset.UnixEpoch, e.ModificationTime);
            Assert.Equal(0, e.Uid);
            Assert.Equal(0, e.Gid);
            Assert.Equal("", ((PosixTarEntry)e).UserName);
            Assert.Equal("", ((PosixTarEntry)e).GroupName);
        });
        Assert.Equal(TarEntryType.Directory, entries[1].EntryType);
        Assert.Equal(FormulaScratch.Executable, entries[2].Mode);
        Assert.Equal(FormulaScratch.Mode(Path.Combine(dir, "metadata.yaml")), entries[3].Mode);
    }

    [Fact]
    public void Gzip_header_is_pinned()
    {
        var bytes = FormulaPacker.Pack(FormulaLoader.Load(scratch.WriteFormula("mysql", 1))).ReadBytes();

        Assert.Equal(new byte[] { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0 }, bytes[..8]);
        Assert.Equal(3, bytes[9]);
    }

    [Fact]
    public void Revision_override_rewrites_only_the_archived_revision()
    {
        var dir = scratch.PathOf("mysql");
        const string metadata = "# the database\nname: mysql\nrevision: 4   # bump on release\nsummary: db\nprovides:\n  db: {interface: mysql, revision: 1}\n";
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), metadata);
        var formula = FormulaLoader.Load(dir);

        var bundle = FormulaPacker.Pack(formula, revisionOverride: 9);

        Assert.Equal(new FormulaId("mysql", 9), bundle.Id);
        Assert.Equal(metadata.Replace("revision: 4 ", "revision: 9 "), ReadText(bundle.ReadBytes(), "metadata.yaml"));
        Assert.Equal(metadata, File.ReadAllText(Path.Combine(dir, "metadata.yaml")));
        Assert.NotEqual(FormulaPacker.Pack(formula).Sha256, bundle.Sha256);
        Assert.Equal(FormulaPacker.Pack(formula).Sha256, FormulaPacker.Pack(formula, revisionOverride: 4).Sha256);
    }

    [Fact]
    public void Revision_override_keeps_crlf_bom_and_quoting_around_it()
    {
        var dir = scratch.PathOf("mysql");
        var original = "\uFEFFname: mysql\r\ndescription: \"d\u00e9j\u00e0 vu\"\r\nrevision: \"4\"\r\nsummary: s\r\n";
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"), original[1..], new UTF8Encoding(true));
        var formula = FormulaLoader.Load(dir);

        var archived = ReadBytes(FormulaPacker.Pack(formula, revisionOverride: 12).ReadBytes(), "metadata.yaml");

        var expected = new UTF8Encoding(true).GetPreamble().Concat(Encoding.UTF8.GetBytes(original[1..].Replace("\"4\"", "12")));
        Assert.Equal(expected, archived);
    }

    [Fact]
    public void Revision_override_writes_the_legacy_revision_file()
    {
        var dir = scratch.PathOf("wordpress");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), "name: wordpress\nsummary: blog");
        FormulaScratch.Write(Path.Combine(dir, "revision"), "3");

        var bundle = FormulaPacker.Pack(FormulaLoader.Load(dir), revisionOverride: 11);

        Assert.Equal("11\n", ReadText(bundle.ReadBytes(), "revision"));
        Assert.Equal("name: wordpress\nsummary: blog", ReadText(bundle.ReadBytes(), "metadata.yaml"));
        Assert.Equal("3", File.ReadAllText(Path.Combine(dir, "revision")));
    }

    [Fact]
    public void Revision_override_appends_when_metadata_has_no_revision_key()
    {
        var rewritten = MetadataRevisionProbe("name: x\nsummary: s", 5);

        Assert.Equal("name: x\nsummary: s\nrevision: 5\n", rewritten);
    }

    [Fact]
    public void Packed_formula_survives_extraction_with_exec_bits()
    {
        var dir = scratch.WriteFormula("mysql", 1);
        FormulaScratch.Write(Path.Combine(dir, "files", "data.bin"), "payload", FormulaScratch.Plain);
        var bundle = FormulaPacker.Pack(FormulaLoader.Load(dir));
        var target = scratch.PathOf("unpacked", "mysql");

        BundleExtractor.Extract(bundle.ReadBytes(), bundle.Sha256, target);

        Assert.Equal(FormulaScratch.Executable, FormulaScratch.Mode(Path.Combine(target, "hooks", "install")));
        Assert.Equal(FormulaScratch.Plain, FormulaScratch.Mode(Path.Combine(target, "files", "data.bin")));
        Assert.Equal("payload", File.ReadAllText(Path.Combine(target, "files", "data.bin")));
        var reloaded = FormulaLoader.Load(target);
        Assert.Equal(["install"], reloaded.Hooks);
        Assert.Equal(bundle.ReadBytes(), FormulaPacker.Pack(reloaded).ReadBytes());
    }

    // Appending is only reachable for metadata without a revision key, which a loaded formula never has.
    private string MetadataRevisionProbe(string metadata, int revision)
    {
        var dir = scratch.PathOf("probe");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"), metadata);
        var formula = new Formula(dir, new FormulaMetadata("x", 0, "", "",
            new Dictionary<string, string>(), new Dictionary<string, string>(), new Dictionary<string, string>()), [], []);
        return ReadText(FormulaPacker.Pack(formula, revision).ReadBytes(), "metadata.yaml");
    }

    internal static List<TarEntry> ReadEntries(byte[] bundle)
    {
        using var reader = new TarReader(new GZipStream(new MemoryStream(bundle), CompressionMode.Decompress));
        var entries = new List<TarEntry>();
        while (reader.GetNextEntry(copyData: true) is { } entry) entries.Add(entry);
        return entries;
    }

    private static byte[] ReadBytes(byte[] bundle, string name)
    {
        using var copy = new MemoryStream();
        ReadEntries(bundle).Single(e => e.Name == name).DataStream!.CopyTo(copy);
        return copy.ToArray();
    }

    private static string ReadText(byte[] bundle, string name)
    {
        var entry = ReadEntries(bundle).Single(e => e.Name == name);
        using var text = new StreamReader(entry.DataStream!, Encoding.UTF8);
        return text.ReadToEnd();
    }
}
