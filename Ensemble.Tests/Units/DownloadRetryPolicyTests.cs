using Ensemble.Units;
using Xunit;

namespace Ensemble.Tests.Units;

public sealed class DownloadRetryPolicyTests
{
    private static readonly DownloadRetryPolicy Policy = new(6, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500));

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 100)]
    [InlineData(3, 200)]
    [InlineData(4, 400)]
    [InlineData(5, 500)]
    [InlineData(6, 500)]
    public void Backoff_doubles_from_the_minimum_and_is_capped(int attempt, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Policy.DelayBefore(attempt));

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(int.MaxValue)]
    public void Attempts_beyond_the_maximum_give_up(int attempt) => Assert.Null(Policy.DelayBefore(attempt));

    [Fact]
    public void Backoff_never_decreases_and_never_exceeds_the_maximum()
    {
        var policy = new DownloadRetryPolicy(200, TimeSpan.FromMilliseconds(3), TimeSpan.FromSeconds(7));
        var previous = TimeSpan.Zero;
        for (var attempt = 1; attempt <= 200; attempt++)
        {
            var delay = Assert.NotNull(policy.DelayBefore(attempt));
            Assert.True(delay >= previous, $"attempt {attempt}: {delay} < {previous}");
            Assert.True(delay <= TimeSpan.FromSeconds(7), $"attempt {attempt}: {delay}");
            previous = delay;
        }
        Assert.Equal(TimeSpan.FromSeconds(7), previous);
        Assert.Null(policy.DelayBefore(201));
    }

    [Fact]
    public void The_default_policy_tries_five_times_between_200ms_and_5s()
    {
        var policy = DownloadRetryPolicy.Default;
        Assert.Equal(TimeSpan.Zero, policy.DelayBefore(1));
        Assert.Equal(TimeSpan.FromMilliseconds(200), policy.DelayBefore(2));
        Assert.Equal(TimeSpan.FromMilliseconds(400), policy.DelayBefore(3));
        Assert.Equal(TimeSpan.FromMilliseconds(800), policy.DelayBefore(4));
        Assert.Equal(TimeSpan.FromMilliseconds(1600), policy.DelayBefore(5));
        Assert.Null(policy.DelayBefore(6));
    }

    [Fact]
    public void A_single_attempt_policy_never_retries()
    {
        var policy = new DownloadRetryPolicy(1, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.Zero, policy.DelayBefore(1));
        Assert.Null(policy.DelayBefore(2));
    }
}
