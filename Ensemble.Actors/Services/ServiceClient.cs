using Ensemble.Formulas;
using Ensemble.Formulas.Transfer;
using static Ensemble.Formulas.Transfer.BundleReplies;
using static Ensemble.Formulas.Transfer.BundleRequests;
using static Ensemble.Services.ServiceReplies;
using static Ensemble.Services.ServiceRequests;

namespace Ensemble.Services;

/// <summary>How the operator's side reaches a controller: the ensemble command through ClusterClient, the test kit in process.</summary>
public interface IControllerChannel
{
    /// <summary>Asks the service manager (<see cref="ServiceRequests"/>, <see cref="EnvironmentRequests"/>) and returns its answer.</summary>
    Task<object> AskServicesAsync(object request, TimeSpan timeout);

    /// <summary>Asks the controller's upload receiver (<see cref="BundleRequests"/>) and returns its answer.</summary>
    Task<object> AskUploadsAsync(object request, TimeSpan timeout);

    /// <summary>Tells the upload receiver something that is not answered.</summary>
    void TellUploads(object message);
}

/// <summary>
/// The operator's side of deploy and upgrade-formula, shared by the ensemble command and the test kit: the repository
/// is read where the operator is. It asks the controller first whether the request would be accepted (and, for an
/// upgrade, what is deployed), reads the repository and resolves the revision (the author's edit loop included), packs
/// the bundle into a temporary file, uploads it in acknowledged chunks unless the controller has that sha256 already,
/// and then sends the request naming the uploaded bundle. Whatever is refused, here or there, comes back as a
/// <see cref="CommandRejected"/> whose kind gives the exit code; nothing is stored before every check here passed.
/// </summary>
public sealed class ServiceClient(IControllerChannel channel, string? bundleDirectory = null)
{
    /// <summary>How long a deploy or upgrade request, or the end of an upload (the controller inspects the bundle), may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a question or one chunk may take.</summary>
    public TimeSpan QuestionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Deploys the latest revision of <paramref name="formulaName"/> from <paramref name="repository"/> (its units on
    /// machine <paramref name="to"/>, or spread when null): <see cref="ServiceDeployed"/> or a refusal.
    /// </summary>
    /// <remarks><paramref name="config"/> (`deploy --config`) is checked against the formula's options here, before anything is uploaded, and again by the controller.</remarks>
    public async Task<object> DeployAsync(string service, string formulaName, string repository, int units, string? to = null,
        IReadOnlyDictionary<string, string>? config = null)
    {
        var prepared = await channel.AskServicesAsync(new PrepareDeploy(service, repository, units, to), QuestionTimeout);
        if (prepared is not DeployPrepared ready) return prepared;
        return await RefusedHereAsync(service, async () =>
        {
            var local = new LocalRepository(repository, LimitsUpTo(ready.MaxRevision));
            if (local.FindLatest(formulaName) is not { } formula)
                return new CommandRejected(service, RejectionKind.NotFound, $"formula '{formulaName}' not found in repository {local.Root}; check the name or pass --repository");
            if (config is { Count: > 0 } &&
                Configuration.ConfigValues.Decide(service, formula.Config, new Dictionary<string, object>(), config) is Configuration.ConfigDecision.Refused refusedConfig)
                return new CommandRejected(service, RejectionKind.InvalidInput, refusedConfig.Reason + "; fix the --config file and deploy again");
            using var bundle = FormulaPacker.Pack(formula, limits: local.Limits, directory: bundleDirectory);
            if (await UploadAsync(bundle) is UploadRefused refused) return new CommandRejected(service, refused.Kind, refused.Reason);
            return await channel.AskServicesAsync(new DeployService(service, bundle.Ref, local.Root, units, to, config is { Count: > 0 } ? config : null), RequestTimeout);
        });
    }

    /// <summary>
    /// Upgrades <paramref name="service"/> from <paramref name="repository"/> (null: the one it was deployed from):
    /// <see cref="UpgradeStarted"/>, <see cref="UpgradePlanned"/> (dry run) or a refusal.
    /// </summary>
    public async Task<object> UpgradeAsync(string service, string? repository = null, int? revision = null,
        IReadOnlyList<string>? units = null, int? maxParallel = null, bool dryRun = false)
    {
        var prepared = await channel.AskServicesAsync(new PrepareUpgrade(service, repository, revision, units, maxParallel), QuestionTimeout);
        if (prepared is not UpgradePrepared ready) return prepared;
        return await RefusedHereAsync(service, async () =>
        {
            var local = new LocalRepository(ready.Repository, LimitsUpTo(ready.MaxRevision));
            switch (UpgradeResolver.Resolve(local, ready.Deployed.Id, ready.Deployed.Sha256, revision, bundleDirectory))
            {
                case UpgradeResolution.FormulaNotFound nf:
                    return new CommandRejected(service, RejectionKind.NotFound, $"formula '{nf.Name}' not found in repository {nf.RepositoryRoot}; pass the repository it lives in with --repository");
                case UpgradeResolution.RevisionNotFound rn:
                    return new CommandRejected(service, RejectionKind.NotFound, $"revision {rn.Revision} of formula '{rn.Name}' not found in repository {ready.Repository}; omit --revision to take the latest");
                case UpgradeResolution.NoNewerRevision nn:
                    // Nothing to upload; the controller may still have units an earlier, halted upgrade left behind.
                    return await channel.AskServicesAsync(new UpgradeFormula(service, ready.Deployed, null, ready.Repository,
                        nn.HighestAvailable, false, units, maxParallel, dryRun), RequestTimeout);
                case UpgradeResolution.Upgrade up:
                    using (up.Bundle)
                    {
                        if (!dryRun && await UploadAsync(up.Bundle) is UploadRefused refused)
                            return new CommandRejected(service, refused.Kind, refused.Reason);
                        return await channel.AskServicesAsync(new UpgradeFormula(service, ready.Deployed, up.Bundle.Ref, ready.Repository,
                            up.Bundle.Id.Revision, up.RevisionBumped, units, maxParallel, dryRun), RequestTimeout);
                    }
                default:
                    throw new InvalidOperationException("unknown resolution");
            }
        });
    }

    /// <summary>
    /// Uploads <paramref name="bundle"/> to the controller's formula storage: <see cref="BundleStored"/> (also when the
    /// controller had it already, and nothing was sent) or <see cref="UploadRefused"/>. Chunks are read from the file
    /// as they are sent, <see cref="BundleTransfer.Window"/> in flight: memory is a few chunks, whatever the size.
    /// </summary>
    public async Task<object> UploadAsync(FormulaBundle bundle)
    {
        var begun = await channel.AskUploadsAsync(new BeginUpload(bundle.Id, bundle.Sha256, bundle.Size), QuestionTimeout);
        if (begun is not UploadAccepted accepted) return Expect(begun);
        var chunkSize = Math.Clamp(accepted.ChunkSize, 1, BundleTransfer.ChunkSize);
        try
        {
            await using var file = bundle.OpenRead();
            var pending = new Queue<Task<object>>();
            long offset = 0;
            while (offset < bundle.Size || pending.Count > 0)
            {
                while (pending.Count < BundleTransfer.Window && offset < bundle.Size)
                {
                    var data = new byte[(int)Math.Min(chunkSize, bundle.Size - offset)];
                    await file.ReadExactlyAsync(data);
                    pending.Enqueue(channel.AskUploadsAsync(new UploadChunk(accepted.UploadId, offset, data), QuestionTimeout));
                    offset += data.Length;
                }
                switch (await pending.Dequeue())
                {
                    case ChunkAccepted:
                        continue;
                    case UploadRefused refused:
                        return refused; // the controller dropped the upload; the chunks still in flight are refused too
                    case var other:
                        throw new InvalidOperationException($"the controller answered a chunk with {other.GetType().Name}");
                }
            }
            return Expect(await channel.AskUploadsAsync(new FinishUpload(accepted.UploadId), RequestTimeout));
        }
        catch
        {
            channel.TellUploads(new AbandonUpload(accepted.UploadId));
            throw;
        }
    }

    private static object Expect(object reply) => reply is BundleStored or UploadRefused ? reply
        : throw new InvalidOperationException($"the controller answered an upload with {reply.GetType().Name}");

    private static FormulaLimits LimitsUpTo(int maxRevision) => FormulaLimits.Default with { MaxRevision = maxRevision };

    /// <summary>What the operator's side refuses, as the controller would have: the repository and formula problems with their kinds.</summary>
    private static async Task<object> RefusedHereAsync(string service, Func<Task<object>> work)
    {
        try
        {
            return await work();
        }
        catch (FormulaValidationException ex)
        {
            return new CommandRejected(service, RejectionKind.InvalidFormula, ex.Message);
        }
        catch (BundleRejectedException ex)
        {
            return new CommandRejected(service, RejectionKind.InvalidFormula, ex.Message);
        }
        catch (DirectoryNotFoundException ex)
        {
            return new CommandRejected(service, RejectionKind.NotFound, ex.Message);
        }
        catch (RepositoryTooLargeException ex)
        {
            return new CommandRejected(service, RejectionKind.InvalidInput, ex.Message);
        }
        catch (RepositoryAccessException ex)
        {
            // The operator's repository cannot be read: as good as not there, and the sentence says why.
            return new CommandRejected(service, RejectionKind.NotFound, ex.Message);
        }
    }
}
