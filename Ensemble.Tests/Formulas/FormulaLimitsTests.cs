using Ensemble.Tests.Support;
using System.Formats.Tar;
using System.Text;
using Xunit;
using Ensemble.Formulas;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Tests.Formulas;

/// <summary>The caps at their edges, the same for packing and unpacking, and the YAML reader as a helper of its own.</summary>
public sealed class FormulaLimitsTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    private static Formula Unchecked(string dir) => new(dir, new FormulaMetadata(Path.GetFileName(dir), 1, "", "",
        new Dictionary<string, string>(), new Dictionary<string, string>(), new Dictionary<string, string>()), [], []);

    // ---- packing ----

    [Fact]
    public void Packing_refuses_a_bundle_over_the_compressed_cap_holding_no_more_than_the_cap()
    {
        var dir = scratch.WriteFormula("noisy", 1);
        var noise = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(noise);
        File.WriteAllBytes(Path.Combine(dir, "noise.bin"), noise);
        var limits = new FormulaLimits { MaxBundleBytes = 1024 * 1024 };

        var packed = scratch.PathOf("packed");
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<FormulaValidationException>(() => FormulaPacker.Pack(FormulaLoader.Load(dir, limits), limits: limits, directory: packed));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Empty(Directory.EnumerateFileSystemEntries(packed));

        Assert.Equal("(bundle): size: the packed formula is over the 1 MiB limit for a compressed bundle; keep large or incompressible files (archives, media, binaries) out of it and have a hook fetch them",
            Assert.Single(e.Problems).ToString());
        // The 3 MiB file streams through to a file that is removed; what is held is one compressor chunk and small buffers.
        Assert.True(allocated < 3 * 1024 * 1024, $"packing allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Packing_a_large_file_streams_it()
    {
        var dir = scratch.WriteFormula("big", 1);
        var content = new byte[40 * 1024 * 1024];
        for (var i = 0; i < content.Length; i++) content[i] = (byte)(i / 4096);
        File.WriteAllBytes(Path.Combine(dir, "data.bin"), content);
        var formula = FormulaLoader.Load(dir);

        var before = GC.GetAllocatedBytesForCurrentThread();
        using var bundle = FormulaPacker.Pack(formula);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The bundle is written to a file as it is made: a compressor chunk and small buffers, whatever its size.
        Assert.True(allocated < 4 * 1024 * 1024, $"packing allocated {allocated:N0} bytes for a {bundle.Size:N0}-byte bundle");
        var target = scratch.PathOf("unpacked");
        before = GC.GetAllocatedBytesForCurrentThread();
        BundleExtractor.Extract(bundle.Path, bundle.Sha256, target);
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 4 * 1024 * 1024, $"checking and unpacking allocated {allocated:N0} bytes for a {bundle.Size:N0}-byte bundle");
        Assert.Equal(content, File.ReadAllBytes(Path.Combine(target, "data.bin")));
    }

    [Fact]
    public void Paths_at_the_name_and_directory_limits_pack_and_unpack()
    {
        var dir = scratch.WriteFormula("edge", 1);
        var directories = string.Join('/', Enumerable.Repeat(new string('d', 30), 4)) + "/" + new string('e', 31);
        var file = directories + "/" + new string('f', 100);
        var folder = directories + "/" + new string('g', 99) + "/";
        FormulaScratch.Write(Path.Combine(dir, file), "edge");
        Directory.CreateDirectory(Path.Combine(dir, folder));
        Assert.Equal(155, directories.Length);

        var bundle = FormulaPacker.Pack(FormulaLoader.Load(dir));
        var target = scratch.PathOf("unpacked");
        BundleExtractor.Extract(bundle.Path, bundle.Sha256, target);

        Assert.Equal("edge", File.ReadAllText(Path.Combine(target, file)));
        Assert.True(Directory.Exists(Path.Combine(target, folder)));
    }

    [Fact]
    public void Revision_override_over_the_cap_is_refused()
    {
        var formula = FormulaLoader.Load(scratch.WriteFormula("top", 1));

        var e = Assert.Throws<FormulaValidationException>(() => FormulaPacker.Pack(formula, 1_000_000_001));

        Assert.Equal("metadata.yaml: revision: revision 1000000001 is over the limit of 1,000,000,000; deploy it under a new formula name",
            Assert.Single(e.Problems).ToString());
    }

    [Fact]
    public void Metadata_changed_into_a_billion_laughs_after_loading_is_refused_when_the_revision_is_rewritten()
    {
        var dir = scratch.WriteFormula("late", 1);
        var formula = FormulaLoader.Load(dir);
        File.AppendAllText(Path.Combine(dir, "metadata.yaml"), "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n");

        var e = Assert.Throws<FormulaValidationException>(() => FormulaPacker.Pack(formula, 2));

        Assert.Contains("more than 10,000 YAML nodes", Assert.Single(e.Problems).Message);
    }

    // ---- unpacking holds bundles to the same caps ----

    [Fact]
    public void Unpacking_refuses_a_bundle_over_the_compressed_cap_before_reading_it()
    {
        var (bytes, sha) = new HostileBundle().File("a", new string('a', 4000)).Build();

        var e = Assert.Throws<BundleRejectedException>(() =>
            BundleExtractor.Extract(bytes, sha, scratch.PathOf("t"), new FormulaLimits { MaxBundleBytes = 100 }));

        Assert.Equal($"bundle is {bytes.Length} bytes, over the 100 bytes limit for a compressed bundle", e.Message);
        Assert.False(Directory.Exists(scratch.PathOf("t")));
    }

    [Fact]
    public void Unpacking_refuses_one_file_over_the_file_cap()
    {
        var (bytes, sha) = new HostileBundle().File("small", "x").File("big", new string('b', 2048)).Build();

        var e = Assert.Throws<BundleRejectedException>(() =>
            BundleExtractor.Extract(bytes, sha, scratch.PathOf("t"), new FormulaLimits { MaxFileBytes = 1024 }));

        Assert.Equal("bundle entry 'big' refused: 2 KiB is over the 1 KiB limit for one file in a formula", e.Message);
        Assert.False(Directory.Exists(scratch.PathOf("t")));
    }

    [Theory]
    [InlineData(33, 1, 1, "34 levels deep, over the limit of 32 levels")]
    [InlineData(0, 0, 101, "101 bytes long, over the limit of 100 bytes")]
    [InlineData(2, 80, 80, "its path is 242 bytes long and cannot be split")]
    public void Unpacking_refuses_names_a_formula_could_not_have(int directories, int directoryLength, int nameLength, string reason)
    {
        var name = string.Concat(Enumerable.Repeat(new string('d', Math.Max(1, directoryLength)) + "/", directories)) + new string('n', nameLength);
        var (bytes, sha) = new HostileBundle().File(name, "x").Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, scratch.PathOf("t")));

        Assert.Contains($"'{name}' refused", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.False(Directory.Exists(scratch.PathOf("t")));
    }

    [Fact]
    public void Unpacking_refuses_more_entries_than_the_default_cap()
    {
        var bundle = new HostileBundle();
        for (var i = 0; i <= FormulaLimits.Default.MaxEntries; i++) bundle.File($"f{i}", "");
        var (bytes, sha) = bundle.Build();

        var e = Assert.Throws<BundleRejectedException>(() => BundleExtractor.Extract(bytes, sha, scratch.PathOf("t")));

        Assert.Equal("bundle entry 'f10000' refused: more than 10,000 entries, the limit for a formula", e.Message);
    }

    // ---- storage ----

    [Fact]
    public async Task Storage_refuses_a_bundle_over_the_compressed_cap()
    {
        var bundle = FormulaPacker.Pack(FormulaLoader.Load(scratch.WriteFormula("s", 1)));
        var storage = new FileFormulaStorage(scratch.PathOf("storage"), new FormulaLimits { MaxBundleBytes = 10 });

        var e = await Assert.ThrowsAsync<BundleRejectedException>(() => storage.PutAsync(bundle));

        Assert.Equal($"bundle local:s-1 is {bundle.Size} bytes, over the 10 bytes limit for a compressed bundle", e.Message);
        Assert.False(Directory.Exists(scratch.PathOf("storage")));
    }

    [Fact]
    public async Task Storage_refuses_to_load_a_stored_file_over_the_compressed_cap()
    {
        var key = new string('a', 64);
        var path = scratch.PathOf("storage", "aa", key + ".tar.gz");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var file = File.Create(path)) file.SetLength(3L * 1024 * 1024 * 1024);

        var e = await Assert.ThrowsAsync<BundleRejectedException>(() => new FileFormulaStorage(scratch.PathOf("storage")).OpenAsync(key));

        Assert.Equal($"stored bundle {path} is 3 GiB, over the 256 MiB limit for a compressed bundle; delete it and deploy or upgrade the formula again", e.Message);
    }

    // ---- upgrades ----

    [Fact]
    public void An_edit_of_a_formula_deployed_at_the_highest_revision_is_refused()
    {
        var limits = new FormulaLimits { MaxRevision = 5 };
        var dir = scratch.WriteFormula("repo/app", 5);
        var repository = new LocalRepository(scratch.PathOf("repo"), limits);
        var deployed = FormulaPacker.Pack(repository.FindLatest("app")!, limits: limits);
        File.AppendAllText(Path.Combine(dir, "hooks", "install"), "echo edited\n");

        var e = Assert.Throws<FormulaValidationException>(() => UpgradeResolver.Resolve(repository, deployed.Id, deployed.Sha256, null));

        Assert.Equal("metadata.yaml: revision: the deployed revision 5 is the limit (5), so an edited copy cannot be deployed as the next revision; deploy it under a new formula name",
            Assert.Single(e.Problems).ToString());
    }

    // ---- the YAML reader, for any YAML a user hands us ----

    [Fact]
    public void Yaml_with_aliases_within_the_cap_is_read()
    {
        var dir = scratch.PathOf("aliased");
        FormulaScratch.Write(Path.Combine(dir, "metadata.yaml"),
            "name: aliased\nrevision: 1\nsummary: &s shared text\ndescription: *s\nprovides:\n  db: &i {interface: mysql}\n  admin: *i\n");

        var formula = FormulaLoader.Load(dir);

        Assert.Equal("shared text", formula.Metadata.Description);
        Assert.Equal(new Dictionary<string, string> { ["db"] = "mysql", ["admin"] = "mysql" }, formula.Metadata.Provides);
    }

    [Fact]
    public void Yaml_reader_serves_any_file_and_names_it()
    {
        var path = scratch.PathOf("settings.yaml");
        File.WriteAllBytes(path, [.. "port: 1\nname: caf"u8, 0xE9, (byte)'\n']);
        var problems = new List<FormulaProblem>();

        var root = FormulaYaml.Read(path, "settings.yaml", FormulaLimits.Default, problems, out var failed);

        Assert.Null(root);
        Assert.True(failed);
        Assert.Equal("settings.yaml: encoding: settings.yaml is not valid UTF-8: byte 17 (line 2) is 0xE9; save the file as UTF-8", Assert.Single(problems).ToString());

        File.WriteAllText(path, "\uFEFFport: 1\n", new UTF8Encoding(false));
        problems.Clear();
        var good = Assert.IsType<YamlMappingNode>(FormulaYaml.Read(path, "settings.yaml", FormulaLimits.Default, problems, out failed));
        Assert.False(failed);
        Assert.Empty(problems);
        Assert.Single(good.Children);
    }

    [Fact]
    public void Yaml_over_the_size_cap_is_refused_without_being_read()
    {
        var path = scratch.PathOf("huge.yaml");
        using (var file = File.Create(path)) file.SetLength(8L * 1024 * 1024 * 1024);
        var problems = new List<FormulaProblem>();

        var before = GC.GetAllocatedBytesForCurrentThread();
        FormulaYaml.Read(path, "huge.yaml", FormulaLimits.Default, problems, out _);

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1024 * 1024);
        Assert.Equal("huge.yaml: size: huge.yaml is 8 GiB, over the limit for a YAML file (1 MiB); shorten it", Assert.Single(problems).ToString());
    }

    [Fact]
    public void Billion_laughs_is_refused_quickly_and_small()
    {
        var text = "a: &a [l,l,l,l,l,l,l,l,l,l]\n" + string.Concat(Enumerable.Range(1, 20).Select(i =>
            $"x{i}: &x{i} [{string.Join(',', Enumerable.Repeat(i == 1 ? "*a" : $"*x{i - 1}", 10))}]\n"));
        var problems = new List<FormulaProblem>();

        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Null(FormulaYaml.Parse(Encoding.UTF8.GetBytes(text), "bomb.yaml", FormulaLimits.Default, problems, out var failed));

        Assert.True(failed);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 * 1024 * 1024);
        Assert.Equal("bomb.yaml: yaml: bomb.yaml has more than 10,000 YAML nodes when every alias is counted as the node it repeats; write it out without aliases or shorten it",
            Assert.Single(problems).ToString());
    }

    [Fact]
    public void Sizes_print_rounded_down_and_exactly_at_a_limit()
    {
        Assert.Equal("1.2 GiB", FormulaLimits.Size(1229L * 1024 * 1024));
        Assert.Equal("64 MiB", FormulaLimits.Size(64L * 1024 * 1024));
        Assert.Equal("67,108,865 bytes", FormulaLimits.Size(64L * 1024 * 1024 + 1, 64L * 1024 * 1024));
        Assert.Equal("300 bytes", FormulaLimits.Size(300));
    }
}
