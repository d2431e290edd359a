using System.Collections.Concurrent;
using Ensemble.Formulas;
using Ensemble.Units;
using Ensemble.Units.Steps;

namespace Ensemble.Environments;

/// <summary>Formula storage that fails or corrupts a chosen number of downloads, then behaves (fault injection).</summary>
public sealed class FaultyFormulaStorage(IFormulaStorage inner) : IFormulaStorage
{
    private int _failuresLeft;
    private int _corruptionsLeft;
    private int _gets;

    /// <summary>The next <paramref name="count"/> downloads fail with an I/O error.</summary>
    public FaultyFormulaStorage FailNext(int count) { Interlocked.Exchange(ref _failuresLeft, count); return this; }

    /// <summary>The next <paramref name="count"/> downloads return bytes with one bit flipped.</summary>
    public FaultyFormulaStorage CorruptNext(int count) { Interlocked.Exchange(ref _corruptionsLeft, count); return this; }

    public int Gets => Volatile.Read(ref _gets);

    public Task<string> PutAsync(FormulaBundle bundle, CancellationToken ct = default) => inner.PutAsync(bundle, ct);

    public bool Contains(string key) => inner.Contains(key);

    public string Location => inner.Location;

    public async Task<byte[]> GetAsync(string key, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _gets);
        if (Interlocked.Decrement(ref _failuresLeft) >= 0) throw new IOException("injected fault: formula storage unreachable");
        var bytes = await inner.GetAsync(key, ct);
        if (Interlocked.Decrement(ref _corruptionsLeft) >= 0)
        {
            bytes = (byte[])bytes.Clone();
            bytes[bytes.Length / 2] ^= 0x40;
        }
        return bytes;
    }
}

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
