namespace Ensemble.Units;

/// <summary>Bounded exponential backoff for formula downloads: attempt n waits min·2^(n-1), capped at max.</summary>
public sealed record DownloadRetryPolicy(int MaxAttempts, TimeSpan MinBackoff, TimeSpan MaxBackoff)
{
    public static DownloadRetryPolicy Default { get; } = new(5, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5));

    /// <summary>The wait before attempt <paramref name="attempt"/> (2 and up), or null when attempts are used up.</summary>
    public TimeSpan? DelayBefore(int attempt)
    {
        if (attempt > MaxAttempts) return null;
        if (attempt <= 1) return TimeSpan.Zero;
        var factor = Math.Pow(2, Math.Min(attempt - 2, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(MinBackoff.Ticks * factor, MaxBackoff.Ticks));
        return delay;
    }
}
