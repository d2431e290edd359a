using System.Collections.Concurrent;
using Ensemble.Formulas;

namespace Ensemble.TestKit;

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
