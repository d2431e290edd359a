namespace Ensemble.Coordination;

/// <summary>
/// Which store failures mean "out of reach for now" (connection lost, session expired and being replaced,
/// no answer in time) rather than a wrong request: what can only be waited out, with backoff.
/// </summary>
public static class StoreTrouble
{
    /// <summary>The first wait before trying the store again, and the most any wait grows to.</summary>
    public static readonly (TimeSpan First, TimeSpan Max) Backoff = (TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10));

    /// <summary>The wait after <paramref name="previous"/> (zero: none yet): doubling from the first, capped at the most.</summary>
    public static TimeSpan NextWait(TimeSpan previous) => previous <= TimeSpan.Zero
        ? Backoff.First
        : TimeSpan.FromTicks(Math.Min(previous.Ticks * 2, Backoff.Max.Ticks));

    public static bool IsTransient(Exception ex) => ex.GetBaseException() switch
    {
        StoreException { Code: StoreErrorCode.ConnectionLoss or StoreErrorCode.SessionExpired or StoreErrorCode.OperationTimeout } => true,
        TimeoutException => true,
        _ => ex is AggregateException { InnerExceptions.Count: > 0 } all && all.InnerExceptions.All(IsTransient),
    };
}
