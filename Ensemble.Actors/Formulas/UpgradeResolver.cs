namespace Ensemble.Formulas;

/// <summary>What an upgrade request comes to once the repository has been consulted.</summary>
public abstract record UpgradeResolution
{
    private UpgradeResolution() { }

    /// <summary>
    /// Deploy <paramref name="Bundle"/> (a temporary file the caller disposes); <paramref name="RevisionBumped"/> when
    /// the revision was raised for an in-place edit.
    /// </summary>
    public sealed record Upgrade(FormulaBundle Bundle, Formula Source, bool RevisionBumped) : UpgradeResolution;

    /// <summary>The repository holds nothing newer than what is deployed.</summary>
    public sealed record NoNewerRevision(FormulaId Deployed, int HighestAvailable) : UpgradeResolution
    {
        public override string ToString() =>
            $"{Deployed} is already deployed and the repository has nothing newer (highest revision {HighestAvailable})";
    }

    /// <summary>An explicitly requested revision is not in the repository.</summary>
    public sealed record RevisionNotFound(string Name, int Revision) : UpgradeResolution
    {
        public override string ToString() => $"revision {Revision} of formula '{Name}' is not in the repository";
    }

    /// <summary>The repository has no formula of that name at all.</summary>
    public sealed record FormulaNotFound(string Name, string RepositoryRoot) : UpgradeResolution
    {
        public override string ToString() => $"formula '{Name}' not found in repository {RepositoryRoot}";
    }
}

/// <summary>Decides which bundle, if any, an upgrade deploys.</summary>
public static class UpgradeResolver
{
    /// <summary>
    /// With an explicit revision, that revision (up or down) unless it is the deployed one. Otherwise the latest
    /// revision when it is newer; when it is not, the author may have edited in place, so the latest content is
    /// packed as the deployed revision and compared by sha256 with what is deployed; a difference deploys it as
    /// deployed revision + 1. The bundle of an upgrade is packed into <paramref name="bundleDirectory"/> (the system's
    /// temporary directory when null).
    /// </summary>
    public static UpgradeResolution Resolve(LocalRepository repository, FormulaId deployed, string deployedSha256, int? requestedRevision, string? bundleDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(deployedSha256);
        var all = repository.FindAll(deployed.Name);

        if (requestedRevision is { } wanted)
        {
            var exact = all.FirstOrDefault(f => f.Metadata.Revision == wanted);
            if (exact is null) return new UpgradeResolution.RevisionNotFound(deployed.Name, wanted);
            if (wanted == deployed.Revision) return new UpgradeResolution.NoNewerRevision(deployed, all[0].Metadata.Revision);
            return new UpgradeResolution.Upgrade(FormulaPacker.Pack(exact, limits: repository.Limits, directory: bundleDirectory), exact, RevisionBumped: false);
        }

        if (all.Count == 0) return new UpgradeResolution.FormulaNotFound(deployed.Name, repository.Root);
        var latest = all[0];
        if (latest.Metadata.Revision > deployed.Revision)
            return new UpgradeResolution.Upgrade(FormulaPacker.Pack(latest, limits: repository.Limits, directory: bundleDirectory), latest, RevisionBumped: false);

        // Packing is deterministic, and a bumped deployment was itself packed with its revision as override,
        // so equal hashes mean the author changed nothing since.
        var asDeployed = FormulaPacker.Hash(latest, revisionOverride: deployed.Revision, repository.Limits);
        if (string.Equals(asDeployed, deployedSha256, StringComparison.OrdinalIgnoreCase))
            return new UpgradeResolution.NoNewerRevision(deployed, latest.Metadata.Revision);
        if (deployed.Revision >= repository.Limits.MaxRevision)
            throw new FormulaValidationException(latest.Directory, [new FormulaProblem(FormulaLoader.MetadataFile, "revision",
                $"the deployed revision {deployed.Revision} is the limit ({FormulaLimits.Count(repository.Limits.MaxRevision)}), so an edited copy cannot be deployed as the next revision; deploy it under a new formula name")]);
        return new UpgradeResolution.Upgrade(FormulaPacker.Pack(latest, revisionOverride: deployed.Revision + 1, repository.Limits, bundleDirectory), latest, RevisionBumped: true);
    }
}
