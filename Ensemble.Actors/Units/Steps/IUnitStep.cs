using Akka.Event;
using Ensemble.Formulas;
using Ensemble.Hooks;
using Ensemble.Topology;

namespace Ensemble.Units.Steps;

/// <summary>
/// One step of a unit's lifecycle (<see cref="UnitStep"/>). The <see cref="UnitAgent"/> is the executor:
/// it persists the state that names the step, then runs it, then persists where the outcome leads.
/// A step may be run again from the start after any crash, so each one is written to be redone.
/// </summary>
public interface IUnitStep
{
    /// <summary>Does the step's work: null on success, else the cause of an expected failure (the unit enters the step's error state).</summary>
    Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token);
}

/// <summary>What a step works with: the unit, its directories, and what the machine's unit agents share.</summary>
public sealed record UnitStepContext(string Unit, UnitPaths Paths, AgentContext Agent, ILoggingAdapter Log)
{
    /// <summary>
    /// The configuration version the start step's config-changed ran for; the unit agent records it in the unit's state
    /// when the step succeeds (a step only answers success or failure).
    /// </summary>
    public System.Runtime.CompilerServices.StrongBox<int?> DeliveredConfig { get; } = new();

    /// <summary>The newest configuration version the unit agent's store watch has shown (0 until its first read).</summary>
    public System.Runtime.CompilerServices.StrongBox<int> KnownConfig { get; } = new();

    /// <summary>What the unit's hook tools see (its relations and address, with the configuration given) when a hook starts; null: no tools.</summary>
    public Func<IReadOnlyDictionary<string, object?>, Hooks.Tools.IHookToolData>? ToolData { get; init; }

    /// <summary>
    /// Runs one of the formula's hooks for this unit, with the hook tools when the machine has them; null on success,
    /// else what went wrong. What the hook wrote with relation-set -r is committed only when it succeeded.
    /// </summary>
    public async Task<string?> HookAsync(string hook, FormulaRef formula, int? previousRevision, CancellationToken token)
    {
        if (Agent.Tools is not { } tools || ToolData is null)
        {
            var plain = await Agent.Hooks.RunAsync(hook, HookContextFor(formula, previousRevision), token);
            return plain.Succeeded ? null : plain.Describe();
        }
        var config = await ConfigAsync();
        var outcome = await tools.RunAsync(Agent.Hooks, hook, HookContextFor(formula, previousRevision), ToolData(config), scope: null, token);
        if (!outcome.Result.Succeeded) return outcome.Result.Describe();
        await Relations.RelationSettings.CommitWritesAsync(new Relations.RelationStore(Agent.Topology), Unit, outcome.Writes, except: null);
        return null;
    }

    private readonly System.Runtime.CompilerServices.StrongBox<IReadOnlyDictionary<string, object?>> _lastConfig = new(new Dictionary<string, object?>());

    /// <summary>
    /// The unit's configuration as the store has it when a hook starts (config-get answers from it); while the store
    /// cannot be read, the last configuration read — a hook is not held up by a store outage for it.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, object?>> ConfigAsync()
    {
        try
        {
            return _lastConfig.Value = await Agent.Topology.EffectiveConfigAsync(UnitNames.ServiceOf(Unit)).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is Coordination.StoreException or TimeoutException || Coordination.StoreTrouble.IsTransient(ex))
        {
            Log.Warning("{0}: the store did not give the configuration ({1}); the hook's config-get answers from the last one read", Unit, ex.GetBaseException().Message);
            return _lastConfig.Value!;
        }
    }

    public HookContext HookContextFor(FormulaRef formula, int? previousRevision = null) => new(
        Unit, UnitNames.ServiceOf(Unit), Paths.FormulaDirectory, Paths.DataDirectory,
        formula.Id.Revision, Paths.LogPath, previousRevision, Paths.HookProcessFile);

    /// <summary>
    /// Fetches and verifies the bundle, retrying with bounded exponential backoff; the path of the verified file in
    /// the machine's cache, or the failure saying why.
    /// </summary>
    public async Task<(string? BundlePath, string? Failure)> DownloadAsync(FormulaRef formula, CancellationToken token)
    {
        var policy = Agent.Settings.DownloadRetry;
        string? lastFailure = null;
        for (var attempt = 1; policy.DelayBefore(attempt) is { } delay; attempt++)
        {
            if (delay > TimeSpan.Zero) await Task.Delay(delay, token);
            try
            {
                return (await Agent.Cache.GetVerifiedAsync(formula, token), null);
            }
            catch (Exception ex) when (ex is IOException or BundleRejectedException or UnauthorizedAccessException)
            {
                lastFailure = ex.Message;
                Log.Warning("{0}: download of {1} failed (attempt {2} of {3}): {4}", Unit, formula.Id, attempt, policy.MaxAttempts, ex.Message);
            }
        }
        return (null, $"download of {formula.Id} failed after {policy.MaxAttempts} attempts: {lastFailure}");
    }

    /// <summary>Downloads the formula and swaps it into the unit's formula directory, the data directory untouched.</summary>
    public async Task<string?> UnpackAsync(FormulaRef formula, CancellationToken token)
    {
        var (bundle, failure) = await DownloadAsync(formula, token);
        if (failure is not null) return failure;
        Directory.CreateDirectory(Paths.DataDirectory);
        FormulaSwap.Replace(Paths, bundle!, formula.Sha256);
        return null;
    }
}
