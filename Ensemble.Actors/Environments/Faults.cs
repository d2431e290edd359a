using System.Collections.Concurrent;
using Ensemble.Formulas;
using Ensemble.Units;

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
