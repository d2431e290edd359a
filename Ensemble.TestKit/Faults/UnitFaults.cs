using System.Collections.Concurrent;
using Ensemble.Units;
using Ensemble.Units.Steps;

namespace Ensemble.TestKit;

/// <summary>An agent crash injected by a test.</summary>
public sealed class InjectedCrashException(string message) : Exception(message);

/// <summary>Where in a step a fault can be injected.</summary>
public enum StepPoint
{
    /// <summary>The step is persisted as current but its work has not begun.</summary>
    Before,

    /// <summary>The step's work is done but the next step is not yet persisted.</summary>
    After,
}

/// <summary>Called around every step of every unit agent; throwing crashes the agent there.</summary>
public interface IUnitFaults
{
    void At(string unit, UnitStep step, StepPoint point);

    public static IUnitFaults None { get; } = new NoFaults();

    private sealed class NoFaults : IUnitFaults
    {
        public void At(string unit, UnitStep step, StepPoint point) { }
    }

    /// <summary>The standard steps, each wrapped so that <paramref name="faults"/> is asked before and after it.</summary>
    public static IReadOnlyDictionary<UnitStep, IUnitStep> Around(IUnitFaults faults, IReadOnlyDictionary<UnitStep, IUnitStep>? steps = null) =>
        (steps ?? UnitSteps.Standard).ToDictionary(kv => kv.Key, kv => (IUnitStep)new FaultyStep(kv.Key, kv.Value, faults));

    private sealed class FaultyStep(UnitStep step, IUnitStep inner, IUnitFaults faults) : IUnitStep
    {
        public async Task<string?> RunAsync(UnitStepContext unit, UnitState state, CancellationToken token)
        {
            faults.At(unit.Unit, step, StepPoint.Before);
            var outcome = await inner.RunAsync(unit, state, token);
            faults.At(unit.Unit, step, StepPoint.After);
            return outcome;
        }
    }
}

/// <summary>Crashes unit agents once at each chosen (step, point), optionally only for chosen units.</summary>
public sealed class CrashFaults : IUnitFaults
{
    private readonly ConcurrentDictionary<(string? Unit, UnitStep Step, StepPoint Point), int> _armed = new();
    private int _crashes;

    public int Crashes => Volatile.Read(ref _crashes);

    /// <summary>Arms one crash at the point of the step, for the unit given or for the first unit to get there.</summary>
    public CrashFaults CrashAt(UnitStep step, StepPoint point, string? unit = null)
    {
        _armed[(unit, step, point)] = 1;
        return this;
    }

    public void At(string unit, UnitStep step, StepPoint point)
    {
        if (TryFire((unit, step, point)) || TryFire((null, step, point)))
        {
            Interlocked.Increment(ref _crashes);
            throw new InjectedCrashException($"injected crash of {unit} {point.ToString().ToLowerInvariant()} step {step}");
        }
    }

    private bool TryFire((string?, UnitStep, StepPoint) key) => _armed.TryRemove(key, out _);
}
