using Akka.Actor;
using Akka.Event;
using System.Security.Cryptography;
using static Ensemble.Formulas.Transfer.BundleRequests;
using static Ensemble.Formulas.Transfer.BundleReplies;
using RejectionKind = Ensemble.Services.ServiceReplies.RejectionKind;

namespace Ensemble.Formulas.Transfer;

/// <summary>
/// The controller's side of the operator's uploads (registered with the ClusterClient receptionist as
/// <c>/user/formula-uploads</c>). An upload is untrusted: its claim (formula, sha256, size) is checked before a byte is
/// taken, each chunk is written to <c>incoming/</c> and hashed as it arrives, the size cap holds while receiving, and
/// at the end the sha256 is compared and the archive inspected without unpacking (<see cref="BundleInspector"/>: the
/// entry rules and caps of unpacking, metadata.yaml and config.yaml validated, the claimed name and revision
/// confirmed). Only then is the file moved into formula storage. A refusal says why in a sentence and leaves nothing
/// behind; an upload that goes quiet is dropped. A bundle already stored is not sent again.
/// </summary>
public sealed class UploadReceiver : ReceiveActor
{
    /// <summary>Uploads received at once; more are refused until one ends, so a burst cannot fill the disk with partial files.</summary>
    public const int MaxConcurrentUploads = 16;

    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromMinutes(2);

    private readonly IFormulaStorage _storage;
    private readonly string _incoming;
    private readonly FormulaLimits _limits;
    private readonly TimeSpan _idleTimeout;

    public UploadReceiver(IFormulaStorage storage, string incomingDirectory, FormulaLimits limits, TimeSpan idleTimeout)
    {
        _storage = storage;
        _incoming = incomingDirectory;
        _limits = limits;
        _idleTimeout = idleTimeout;
        Receive<BeginUpload>(Begin);
        Receive<UploadChunk>(m => Route(m.UploadId, m));
        Receive<FinishUpload>(m => Route(m.UploadId, m));
        Receive<AbandonUpload>(m => Context.Child(SessionName(m.UploadId)).Tell(m));
    }

    public static Props Props(IFormulaStorage storage, string incomingDirectory, FormulaLimits limits, TimeSpan? idleTimeout = null) =>
        Akka.Actor.Props.Create(() => new UploadReceiver(storage, incomingDirectory, limits, idleTimeout ?? DefaultIdleTimeout));

    /// <summary>Partial uploads of a previous run of the node can never be finished: remove them.</summary>
    protected override void PreStart()
    {
        try
        {
            if (Directory.Exists(_incoming))
                foreach (var leftover in Directory.EnumerateFiles(_incoming, "*.part")) File.Delete(leftover);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Context.GetLogger().Warning("could not remove partial uploads in {0}: {1}", _incoming, e.Message);
        }
    }

    private static string SessionName(string uploadId) => "upload-" + (uploadId.All(char.IsAsciiLetterOrDigit) ? uploadId : "invalid");

    private void Route(string uploadId, object message)
    {
        var session = Context.Child(SessionName(uploadId ?? ""));
        if (session.IsNobody())
            Sender.Tell(new UploadRefused(RejectionKind.Unavailable,
                $"upload {uploadId} is not in progress on the controller (it was refused, finished or left idle for {_idleTimeout.TotalSeconds:0} s); upload the formula again"));
        else
            session.Forward(message);
    }

    private void Begin(BeginUpload m)
    {
        if (Check(m) is { } refused)
        {
            Sender.Tell(refused);
            return;
        }
        var formula = new FormulaRef(m.Formula, m.Sha256.ToLowerInvariant());
        try
        {
            if (_storage.Contains(formula.Sha256))
            {
                Sender.Tell(new BundleStored(formula, Transferred: false));
                return;
            }
        }
        catch (IOException e)
        {
            // Storage in a database that is down: the operator hears why, not a timeout.
            Sender.Tell(new UploadRefused(RejectionKind.Unavailable, CannotStore(m.Formula, e, _storage.Location)));
            return;
        }
        if (Context.GetChildren().Count() >= MaxConcurrentUploads)
        {
            Sender.Tell(new UploadRefused(RejectionKind.Unavailable,
                $"the controller is receiving {MaxConcurrentUploads} uploads already, its limit; try again when one has finished"));
            return;
        }
        var id = Guid.NewGuid().ToString("N");
        var path = Path.Combine(_incoming, id + ".part");
        FileStream file;
        try
        {
            Directory.CreateDirectory(_incoming);
            file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Sender.Tell(new UploadRefused(RejectionKind.Unavailable, CannotStore(m.Formula, e, _storage.Location)));
            return;
        }
        Context.ActorOf(Akka.Actor.Props.Create(() => new UploadSession(id, formula, m.Size, path, file, _storage, _limits, _idleTimeout)), SessionName(id));
        Sender.Tell(new UploadAccepted(id, BundleTransfer.ChunkSize));
    }

    /// <summary>The claim an upload begins with, checked before anything is written.</summary>
    private UploadRefused? Check(BeginUpload m)
    {
        if (!BundleFiles.IsSha256(m.Sha256))
            return new UploadRefused(RejectionKind.InvalidInput, $"'{FormulaLoader.Shown(m.Sha256 ?? "")}' is not a sha256 (64 hex digits); an upload names its bundle by its sha256");
        var name = m.Formula.Name ?? "";
        if (name.Length == 0 || FormulaLoader.NameProblem(name, _limits) is not null)
            return new UploadRefused(RejectionKind.InvalidFormula,
                $"{FormulaLoader.MetadataFile}: name: {(name.Length == 0 ? "an upload must name its formula" : FormulaLoader.NameProblem(name, _limits))}");
        if (m.Formula.Revision < 0 || m.Formula.Revision > _limits.MaxRevision)
            return new UploadRefused(RejectionKind.InvalidFormula,
                $"{FormulaLoader.MetadataFile}: revision: revision {m.Formula.Revision} is not between 0 and the limit of {FormulaLimits.Count(_limits.MaxRevision)}; use a smaller revision");
        if (m.Size <= 0)
            return new UploadRefused(RejectionKind.InvalidInput, $"an upload of {m.Size} bytes holds no bundle; pack the formula and upload it again");
        if (m.Size > _limits.MaxBundleBytes)
            return new UploadRefused(RejectionKind.InvalidFormula,
                $"(bundle): size: the packed formula {m.Formula} is {FormulaLimits.Size(m.Size, _limits.MaxBundleBytes)}, over the {FormulaLimits.Size(_limits.MaxBundleBytes)} limit for a compressed bundle; keep large or incompressible files (archives, media, binaries) out of it and have a hook fetch them");
        return null;
    }

    internal static string CannotStore(FormulaId formula, Exception e, string? location = null) => e is FormulaStorageUnavailableException
        ? $"cannot store {formula}: {e.Message}"
        : $"cannot store {formula} in the formula storage {location ?? "of the controller"}: {Units.DiskFaults.Reason(e)}; " +
        "make the environment's data directory writable (and check the disk has room), then try again";

    /// <summary>One upload as it arrives: its file, its hash so far, and its bytes so far.</summary>
    private sealed class UploadSession : ReceiveActor
    {
        private readonly string _id;
        private readonly FormulaRef _claim;
        private readonly long _size;
        private readonly string _path;
        private readonly FileStream _file;
        private readonly IFormulaStorage _storage;
        private readonly FormulaLimits _limits;
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly ILoggingAdapter _log = Context.GetLogger();
        private long _received;

        private sealed record Completed(object Reply, IActorRef ReplyTo);

        public UploadSession(string id, FormulaRef claim, long size, string path, FileStream file, IFormulaStorage storage, FormulaLimits limits, TimeSpan idle)
        {
            _id = id;
            _claim = claim;
            _size = size;
            _path = path;
            _file = file;
            _storage = storage;
            _limits = limits;
            SetReceiveTimeout(idle);
            ReceiveAsync<UploadChunk>(OnChunkAsync);
            Receive<FinishUpload>(_ => Finish());
            Receive<AbandonUpload>(_ => Context.Stop(Self));
            Receive<ReceiveTimeout>(_ =>
            {
                _log.Warning("upload of {0} dropped: nothing arrived for {1} (it had {2} of {3} bytes)", _claim.Id, idle, _received, _size);
                Context.Stop(Self);
            });
        }

        private void Refuse(RejectionKind kind, string reason)
        {
            _log.Warning("upload of {0} refused: {1}", _claim.Id, reason);
            Sender.Tell(new UploadRefused(kind, reason));
            Context.Stop(Self);
        }

        private async Task OnChunkAsync(UploadChunk chunk)
        {
            if (chunk.Offset != _received)
            {
                Refuse(RejectionKind.InvalidInput, $"the upload of {_claim.Id} sent bytes at {chunk.Offset} where {_received} was next; upload it again");
                return;
            }
            if (chunk.Data.Length is 0 or > BundleTransfer.ChunkSize)
            {
                Refuse(RejectionKind.InvalidInput, $"the upload of {_claim.Id} sent a chunk of {chunk.Data.Length} bytes; chunks hold 1 to {BundleTransfer.ChunkSize} bytes");
                return;
            }
            if (_received + chunk.Data.Length > _size)
            {
                Refuse(RejectionKind.InvalidFormula, $"(bundle): size: the upload of {_claim.Id} sent more than the {FormulaLimits.Count(_size)} bytes it announced; nothing was stored");
                return;
            }
            try
            {
                await _file.WriteAsync(chunk.Data);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Refuse(RejectionKind.Unavailable, CannotStore(_claim.Id, e, _storage.Location));
                return;
            }
            _hash.AppendData(chunk.Data);
            _received += chunk.Data.Length;
            Sender.Tell(new ChunkAccepted(_id, _received));
        }

        private void Finish()
        {
            if (_received != _size)
            {
                Refuse(RejectionKind.InvalidFormula, $"(bundle): size: the upload of {_claim.Id} ended after {FormulaLimits.Count(_received)} of the {FormulaLimits.Count(_size)} bytes it announced; nothing was stored; upload it again");
                return;
            }
            var actual = BundleFiles.Hex(_hash);
            if (actual != _claim.Sha256)
            {
                Refuse(RejectionKind.InvalidFormula, $"(bundle): sha256: the uploaded bundle of {_claim.Id} does not match the sha256 it announced ({_claim.Sha256}): its bytes hash to {actual}; nothing was stored");
                return;
            }
            SetReceiveTimeout(null);
            Become(() => Receive<Completed>(done =>
            {
                done.ReplyTo.Tell(done.Reply);
                Context.Stop(Self);
            }));
            var replyTo = Sender;
            Task.Run(StoreAsync).PipeTo(Self, success: reply => new Completed(reply, replyTo),
                failure: e => new Completed(new UploadRefused(RejectionKind.Unavailable, $"the controller could not store {_claim.Id}: {e.GetBaseException().Message}"), replyTo));
        }

        /// <summary>Inspects the complete upload and moves it into storage; the reply says how it went.</summary>
        private async Task<object> StoreAsync()
        {
            try
            {
                await _file.FlushAsync();
                _file.Flush(flushToDisk: true);
                await _file.DisposeAsync();
                var inspected = await StoredBundles.InspectAsync(_path, $"the uploaded bundle of {_claim.Id}", _limits);
                if (inspected.Id != _claim.Id)
                    return new UploadRefused(RejectionKind.InvalidFormula,
                        $"{FormulaLoader.MetadataFile}: the upload claims to be {_claim.Id}, but the metadata.yaml in it says {inspected.Id}; nothing was stored");
                await _storage.MoveInAsync(new FormulaBundle(_claim.Id, _path, _claim.Sha256, _size, ownsFile: true));
                _log.Info("stored the uploaded {0} ({1} bytes)", _claim, _size);
                return new BundleStored(_claim, Transferred: true);
            }
            catch (FormulaValidationException e)
            {
                return new UploadRefused(RejectionKind.InvalidFormula, e.Message + "; nothing was stored");
            }
            catch (BundleRejectedException e)
            {
                return new UploadRefused(RejectionKind.InvalidFormula, $"the uploaded bundle of {_claim.Id} was refused: {e.Message}; nothing was stored");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new UploadRefused(RejectionKind.Unavailable, CannotStore(_claim.Id, e, _storage.Location));
            }
        }

        protected override void PostStop()
        {
            _file.Dispose();
            _hash.Dispose();
            try { File.Delete(_path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log.Warning("could not remove {0}: {1}", _path, e.Message); }
        }
    }
}

/// <summary>Checks of bundles in formula storage or on their way in, shared by uploads and the requests that name them.</summary>
public static class StoredBundles
{
    /// <summary>Inspects the bundle file at <paramref name="path"/> (<see cref="BundleInspector"/>) off the caller's thread.</summary>
    public static Task<InspectedBundle> InspectAsync(string path, string describedAs, FormulaLimits limits) =>
        Task.Run(() =>
        {
            using var stream = BundleFiles.OpenRead(path);
            return BundleInspector.Inspect(stream, describedAs, limits);
        });

    /// <summary>
    /// Confirms that the stored bundle <paramref name="formula"/> names is there and holds that formula: a request
    /// names a bundle by its sha256, and the name and revision it claims must be what the bundle's metadata says.
    /// Null when it does; otherwise the refusal (not stored: NotFound; another formula: InvalidFormula).
    /// </summary>
    /// <summary>The stored bundle, inspected (Refusal null), or why it cannot be used (Inspected null).</summary>
    public static async Task<(InspectedBundle? Inspected, (RejectionKind Kind, string Reason)? Refusal)> ConfirmAsync(
        IFormulaStorage storage, FormulaRef formula, FormulaLimits limits)
    {
        if (!BundleFiles.IsSha256(formula.Sha256) || !storage.Contains(formula.Sha256))
            return (null, (RejectionKind.NotFound, $"the bundle of {formula} is not in the controller's formula storage; upload it first (deploy and upgrade-formula do)"));
        try
        {
            await using var stream = await storage.OpenAsync(formula.Sha256);
            var inspected = await Task.Run(() => BundleInspector.Inspect(stream, $"the stored bundle of {formula.Id}", limits));
            return inspected.Id == formula.Id ? (inspected, null)
                : (null, (RejectionKind.InvalidFormula, $"the stored bundle {formula.Sha256} holds {inspected.Id}, not {formula.Id}; name the formula it holds"));
        }
        catch (FormulaValidationException e)
        {
            return (null, (RejectionKind.InvalidFormula, e.Message));
        }
        catch (BundleRejectedException e)
        {
            return (null, (RejectionKind.InvalidFormula, $"the stored bundle of {formula.Id} was refused: {e.Message}"));
        }
    }
}
