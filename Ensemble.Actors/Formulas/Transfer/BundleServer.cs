using Akka.Actor;
using static Ensemble.Formulas.Transfer.BundleRequests;
using static Ensemble.Formulas.Transfer.BundleReplies;

namespace Ensemble.Formulas.Transfer;

/// <summary>
/// The controller's side of agents' downloads: answers each <see cref="GetBundleChunk"/> with at most
/// <see cref="BundleTransfer.ChunkSize"/> bytes read from formula storage. Stateless: every request opens the bundle,
/// reads its chunk off the actor thread and answers, so a fetch can restart or resume at any offset and many
/// agents fetch at once; memory is a chunk per request in flight.
/// </summary>
public sealed class BundleServer : ReceiveActor
{
    public BundleServer(IFormulaSource storage)
    {
        Receive<GetBundleChunk>(request =>
        {
            var replyTo = Sender;
            if (!BundleFiles.IsSha256(request.Sha256) || request.Offset < 0 || request.Length is < 1 or > BundleTransfer.ChunkSize)
            {
                replyTo.Tell(new BundleUnavailable(request.Sha256 ?? "", $"a chunk request names a sha256 of 64 hex digits, an offset of at least 0 and a length of 1 to {BundleTransfer.ChunkSize} bytes", NotStored: false));
                return;
            }
            ReadAsync(storage, request).PipeTo(replyTo);
        });
    }

    public static Props Props(IFormulaSource storage) => Akka.Actor.Props.Create(() => new BundleServer(storage));

    private static async Task<object> ReadAsync(IFormulaSource storage, GetBundleChunk request)
    {
        try
        {
            await using var stream = await storage.OpenAsync(request.Sha256, request.Offset);
            var size = stream.Length;
            var wanted = (int)Math.Clamp(size - request.Offset, 0, request.Length);
            var data = new byte[wanted];
            var total = 0;
            int read;
            while (total < wanted && (read = await stream.ReadAsync(data.AsMemory(total))) > 0) total += read;
            Telemetry.EnsembleMetrics.Bundles.Sent(total);
            return new BundleChunk(request.Sha256, request.Offset, size, total == wanted ? data : data[..total]);
        }
        catch (FileNotFoundException e)
        {
            return new BundleUnavailable(request.Sha256, e.Message, NotStored: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BundleRejectedException)
        {
            return new BundleUnavailable(request.Sha256, $"the controller cannot read bundle {request.Sha256}: {e.Message}", NotStored: false);
        }
    }
}
