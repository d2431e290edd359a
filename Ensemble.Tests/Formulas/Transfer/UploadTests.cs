using System.Formats.Tar;
using System.IO.Compression;
using Akka.Actor;
using Ensemble.Formulas;
using Ensemble.Formulas.Transfer;
using Ensemble.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static Ensemble.Formulas.Transfer.BundleReplies;
using static Ensemble.Formulas.Transfer.BundleRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Formulas.Transfer;

/// <summary>
/// The controller's upload receiver treats what the operator's side sends as untrusted: a bundle whose bytes were
/// changed in a chunk, that claims another sha256, that is over the cap, out of order or longer than announced, that
/// holds another formula than it claims or an entry no bundle may hold, is refused with one sentence, and nothing is
/// stored (neither in formula storage nor left in incoming/).
/// </summary>
public sealed class UploadTests(ITestOutputHelper output) : EnvironmentTest(output)
{
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);

    private FileFormulaStorage Storage => (FileFormulaStorage)Env.Storage;

    private string[] Stored() =>
        Directory.Exists(Storage.Root) ? Directory.GetFiles(Storage.Root, "*", SearchOption.AllDirectories).Order().ToArray() : [];

    /// <summary>A packed formula with a file of random bytes, so that it takes several chunks.</summary>
    private FormulaBundle Pack(string name, int revision, int randomBytes = 300_000)
    {
        var dir = TestFormulas.Write(Repository, name, revision);
        var blob = new byte[randomBytes];
        Random.Shared.NextBytes(blob);
        File.WriteAllBytes(Path.Combine(dir, "blob.bin"), blob);
        return FormulaPacker.Pack(FormulaLoader.Load(dir), directory: Root);
    }

    private async Task<string> BeginAsync(FormulaBundle bundle, FormulaId? claim = null, string? sha = null, long? size = null)
    {
        var accepted = Assert.IsType<UploadAccepted>(await Env.Uploads.Ask<object>(new BeginUpload(claim ?? bundle.Id, sha ?? bundle.Sha256, size ?? bundle.Size), Ask));
        Assert.Equal(BundleTransfer.ChunkSize, accepted.ChunkSize);
        return accepted.UploadId;
    }

    /// <summary>Sends the chunks of <paramref name="bytes"/> one by one, each answered; the first refusal ends it.</summary>
    private async Task<object> SendAsync(string upload, byte[] bytes)
    {
        for (var offset = 0; offset < bytes.Length; offset += BundleTransfer.ChunkSize)
        {
            var chunk = bytes[offset..Math.Min(bytes.Length, offset + BundleTransfer.ChunkSize)];
            var reply = await Env.Uploads.Ask<object>(new UploadChunk(upload, offset, chunk), Ask);
            if (reply is not ChunkAccepted accepted) return reply;
            Assert.Equal(offset + chunk.Length, accepted.Received);
        }
        return await Env.Uploads.Ask<object>(new FinishUpload(upload), TimeSpan.FromSeconds(30));
    }

    private async Task NothingStoredAsync(string[] before, FormulaBundle bundle)
    {
        Assert.False(Env.Storage.Contains(bundle.Sha256));
        // The session removes its partial file as it stops, just after it answered.
        await LocalEnvironment.WaitUntilAsync(() => Task.FromResult(Stored().SequenceEqual(before)), Deadline, "the partial upload to be removed");
    }

    [Fact]
    public async Task An_upload_goes_in_chunks_is_stored_under_its_sha256_and_is_not_sent_again()
    {
        using var bundle = Pack("app", 1);
        Assert.True(bundle.Size > 4 * BundleTransfer.ChunkSize, $"the bundle is {bundle.Size} bytes, fewer than 4 chunks");

        var stored = Assert.IsType<BundleStored>(await Env.Client.UploadAsync(bundle));
        Assert.True(stored.Transferred);
        Assert.Equal(bundle.Ref, stored.Formula);
        Assert.Equal(bundle.ReadBytes(), await File.ReadAllBytesAsync(Assert.Single(Stored())));

        // The same bytes again: the controller has them, nothing is sent.
        var again = Assert.IsType<BundleStored>(await Env.Client.UploadAsync(bundle));
        Assert.False(again.Transferred);
    }

    [Fact]
    public async Task A_chunk_changed_in_transit_is_refused_at_the_end_and_nothing_is_stored()
    {
        using var bundle = Pack("app", 1);
        var before = Stored();
        var upload = await BeginAsync(bundle);
        var bytes = bundle.ReadBytes();
        bytes[BundleTransfer.ChunkSize + 17] ^= 0x01;

        var refused = Assert.IsType<UploadRefused>(await SendAsync(upload, bytes));

        Assert.Equal(RejectionKind.InvalidFormula, refused.Kind);
        Assert.Contains($"does not match the sha256 it announced ({bundle.Sha256})", refused.Reason);
        Assert.Contains("nothing was stored", refused.Reason);
        await NothingStoredAsync(before, bundle);
        // The upload is gone: a chunk or the end sent for it now is refused as unknown.
        Assert.Contains("is not in progress", Assert.IsType<UploadRefused>(await Env.Uploads.Ask<object>(new FinishUpload(upload), Ask)).Reason);
    }

    [Fact]
    public async Task An_upload_claiming_another_sha256_is_refused_through_the_operators_side()
    {
        using var bundle = Pack("app", 1);
        var before = Stored();
        var wrong = new string('a', 64);
        using var lying = new FormulaBundle(bundle.Id, bundle.Path, wrong, bundle.Size);

        var refused = Assert.IsType<UploadRefused>(await Env.Client.UploadAsync(lying));

        Assert.Contains($"hash to {bundle.Sha256}", refused.Reason);
        Assert.False(Env.Storage.Contains(wrong));
        await NothingStoredAsync(before, bundle);
    }

    [Fact]
    public async Task An_upload_over_the_bundle_cap_is_refused_before_a_byte_is_taken()
    {
        using var bundle = Pack("app", 1, randomBytes: 1000);
        var cap = FormulaLimits.Default.MaxBundleBytes;

        var refused = Assert.IsType<UploadRefused>(await Env.Uploads.Ask<object>(new BeginUpload(bundle.Id, bundle.Sha256, cap + 1), Ask));

        Assert.Equal(RejectionKind.InvalidFormula, refused.Kind);
        Assert.StartsWith("(bundle): size: ", refused.Reason);
        Assert.Contains($"over the {FormulaLimits.Size(cap)} limit for a compressed bundle", refused.Reason);
        Assert.False(Directory.Exists(Storage.IncomingDirectory) && Directory.EnumerateFileSystemEntries(Storage.IncomingDirectory).Any());
    }

    [Fact]
    public async Task Bytes_past_the_announced_size_or_out_of_order_are_refused_and_nothing_is_stored()
    {
        using var bundle = Pack("app", 1);
        var before = Stored();
        var bytes = bundle.ReadBytes();

        // Announced smaller than it is: the chunk that would pass the announced size is refused.
        var upload = await BeginAsync(bundle, size: BundleTransfer.ChunkSize + 10);
        var longer = Assert.IsType<UploadRefused>(await SendAsync(upload, bytes));
        Assert.Contains($"sent more than the {FormulaLimits.Count(BundleTransfer.ChunkSize + 10)} bytes it announced", longer.Reason);

        // A chunk for another offset than the next.
        upload = await BeginAsync(bundle);
        var skipped = Assert.IsType<UploadRefused>(await Env.Uploads.Ask<object>(new UploadChunk(upload, BundleTransfer.ChunkSize, bytes[..100]), Ask));
        Assert.Contains($"sent bytes at {BundleTransfer.ChunkSize} where 0 was next", skipped.Reason);

        // A chunk larger than a chunk may be.
        upload = await BeginAsync(bundle);
        var huge = Assert.IsType<UploadRefused>(await Env.Uploads.Ask<object>(new UploadChunk(upload, 0, bytes[..(BundleTransfer.ChunkSize + 1)]), Ask));
        Assert.Contains($"chunks hold 1 to {BundleTransfer.ChunkSize} bytes", huge.Reason);

        // Ended early.
        upload = await BeginAsync(bundle);
        Assert.IsType<ChunkAccepted>(await Env.Uploads.Ask<object>(new UploadChunk(upload, 0, bytes[..1000]), Ask));
        var shorter = Assert.IsType<UploadRefused>(await Env.Uploads.Ask<object>(new FinishUpload(upload), Ask));
        Assert.Contains("ended after 1,000 of the", shorter.Reason);

        await NothingStoredAsync(before, bundle);
    }

    [Fact]
    public async Task A_bundle_holding_another_formula_than_it_claims_is_refused()
    {
        using var bundle = Pack("app", 3);
        var before = Stored();

        var upload = await BeginAsync(bundle, claim: new FormulaId("app", 4));
        var refused = Assert.IsType<UploadRefused>(await SendAsync(upload, bundle.ReadBytes()));

        Assert.Equal(RejectionKind.InvalidFormula, refused.Kind);
        Assert.Contains("the upload claims to be local:app-4, but the metadata.yaml in it says local:app-3", refused.Reason);
        await NothingStoredAsync(before, bundle);
    }

    [Fact]
    public async Task A_bundle_with_a_link_entry_is_refused_although_its_sha256_is_right()
    {
        var before = Stored();
        var path = Path.Combine(Root, "hostile.tar.gz");
        await using (var file = File.Create(path))
        await using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        await using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar))
        {
            var metadata = new UstarTarEntry(TarEntryType.RegularFile, "metadata.yaml") { DataStream = new MemoryStream("name: app\nrevision: 1\nsummary: s\ndescription: d\n"u8.ToArray()) };
            await tar.WriteEntryAsync(metadata);
            await tar.WriteEntryAsync(new UstarTarEntry(TarEntryType.SymbolicLink, "hooks/install") { LinkName = "/etc/passwd" });
        }
        var bytes = await File.ReadAllBytesAsync(path);
        using var hostile = new FormulaBundle(new FormulaId("app", 1), path, BundleFiles.Sha256Hex(bytes), bytes.Length);

        var refused = Assert.IsType<UploadRefused>(await Env.Client.UploadAsync(hostile));

        Assert.Equal(RejectionKind.InvalidFormula, refused.Kind);
        Assert.Contains("'hooks/install' refused: links are not allowed in formula bundles", refused.Reason);
        await NothingStoredAsync(before, hostile);
    }

    [Fact]
    public async Task A_deploy_naming_a_bundle_the_controller_does_not_hold_is_refused_and_changes_nothing()
    {
        var missing = new FormulaRef(new FormulaId("app", 1), new string('b', 64));
        var reply = await Env.AskAsync<object>(new Ensemble.Services.ServiceRequests.DeployService("app", missing, Repository, 1));

        var rejected = Assert.IsType<CommandRejected>(reply);
        Assert.Equal(RejectionKind.NotFound, rejected.Kind);
        Assert.Contains("is not in the controller's formula storage; upload it first", rejected.Reason);
        Assert.Null(await Env.Topology.GetServiceAsync("app"));
    }
}
