using System.Collections.Concurrent;
using Ensemble.Hooks;

namespace Ensemble.TestKit;

/// <summary>
/// Hooks that fail or hang on demand, whatever the formula says: the next run of a chosen hook (for one
/// unit or any) exits with a chosen code, or times out, without the hook being run.
/// </summary>
public sealed class HookFaults
{
    private readonly ConcurrentDictionary<(string? Unit, string Hook), HookResult> _armed = new();
    private int _injected;

    /// <summary>How many hook runs were replaced by a fault.</summary>
    public int Injected => Volatile.Read(ref _injected);

    /// <summary>The next run of <paramref name="hook"/> (of <paramref name="unit"/>, or of any unit) exits with <paramref name="exitCode"/>.</summary>
    public HookFaults FailNext(string hook, int exitCode = 1, string? unit = null)
    {
        _armed[(unit, hook)] = new HookResult(hook, Ran: true, ExitCode: exitCode, TimedOut: false);
        return this;
    }

    /// <summary>The next run of <paramref name="hook"/> is reported as timed out and killed.</summary>
    public HookFaults TimeOutNext(string hook, string? unit = null)
    {
        _armed[(unit, hook)] = new HookResult(hook, Ran: true, ExitCode: -1, TimedOut: true);
        return this;
    }

    /// <summary>A hook runner that consults these faults before running hooks with <paramref name="inner"/>.</summary>
    public IHookRunner Around(IHookRunner inner) => new Runner(inner, this);

    private sealed class Runner(IHookRunner inner, HookFaults faults) : IHookRunner
    {
        public Task<HookResult> RunAsync(string hook, HookContext context, CancellationToken cancellationToken)
        {
            if (faults._armed.TryRemove((context.UnitName, hook), out var result) || faults._armed.TryRemove((null, hook), out result))
            {
                Interlocked.Increment(ref faults._injected);
                return Task.FromResult(result);
            }
            return inner.RunAsync(hook, context, cancellationToken);
        }
    }
}
