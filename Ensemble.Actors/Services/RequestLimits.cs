namespace Ensemble.Services;

/// <summary>
/// What one request may ask of the controller, checked before anything changes (HOCON ensemble.limits,
/// documented in docs/cli.md). They keep a typing slip ("-n 1000000") from burying an environment in work
/// it cannot finish; a real deployment that needs more raises them in controller.conf.
/// </summary>
public sealed record RequestLimits(
    int UnitsPerRequest,
    int UnitsPerService,
    int ServicesPerEnvironment,
    int MaxRevision,
    int RepositoryPathLength)
{
    public static RequestLimits Default { get; } = new(
        UnitsPerRequest: 1_000,
        UnitsPerService: 5_000,
        ServicesPerEnvironment: 1_000,
        MaxRevision: 1_000_000_000,
        RepositoryPathLength: 4_096);
}
