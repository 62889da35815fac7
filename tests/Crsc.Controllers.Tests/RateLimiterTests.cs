using Crsc.Controllers.Queue;
using Crsc.Testing;

namespace Crsc.Controllers.Tests;

public sealed class RateLimiterTests
{
    [Fact]
    public void Exponential_starts_at_5ms_doubles_and_caps_at_1000s()
    {
        var limiter = new ExponentialFailureRateLimiter<string>(RateLimiters.DefaultBaseDelay, RateLimiters.DefaultMaxDelay);
        var delays = Enumerable.Range(0, 20).Select(_ => limiter.When("a")).ToList();
        Assert.Equal(TimeSpan.FromMilliseconds(5), delays[0]);
        Assert.Equal(TimeSpan.FromMilliseconds(10), delays[1]);
        Assert.Equal(TimeSpan.FromMilliseconds(20), delays[2]);
        Assert.Equal(TimeSpan.FromMilliseconds(5 * 1024), delays[10]);
        // 5 ms · 2^17 = 655 s, 2^18 would be 1310 s: capped
        Assert.Equal(TimeSpan.FromMilliseconds(5 * 131072), delays[17]);
        Assert.Equal(TimeSpan.FromSeconds(1000), delays[18]);
        Assert.Equal(TimeSpan.FromSeconds(1000), delays[19]);
        for (var i = 0; i < 2000; i++) Assert.Equal(TimeSpan.FromSeconds(1000), limiter.When("a")); // never overflows
        Assert.Equal(2020, limiter.NumRequeues("a"));
    }

    [Fact]
    public void Exponential_is_per_key_and_forget_starts_over()
    {
        var limiter = new ExponentialFailureRateLimiter<string>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000));
        limiter.When("a");
        limiter.When("a");
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("b"));
        Assert.Equal(TimeSpan.FromMilliseconds(20), limiter.When("a"));
        limiter.Forget("a");
        Assert.Equal(0, limiter.NumRequeues("a"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("a"));
        Assert.Equal(1, limiter.NumRequeues("b"));
    }

    [Fact]
    public void Bucket_allows_the_burst_then_spaces_at_qps_and_refills_with_time()
    {
        var time = new ManualTimeProvider();
        var bucket = new BucketRateLimiter<string>(10, 100, time);
        for (var i = 0; i < 100; i++) Assert.Equal(TimeSpan.Zero, bucket.When($"k{i}"));
        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("x"));
        Assert.Equal(TimeSpan.FromMilliseconds(200), bucket.When("y"));
        time.Advance(TimeSpan.FromSeconds(1.2)); // 12 tokens back: the 2 owed plus 10
        for (var i = 0; i < 10; i++) Assert.Equal(TimeSpan.Zero, bucket.When($"z{i}"));
        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("w"));
        time.Advance(TimeSpan.FromHours(1));
        for (var i = 0; i < 100; i++) Assert.Equal(TimeSpan.Zero, bucket.When($"k{i}")); // never more than the burst
        Assert.True(bucket.When("over") > TimeSpan.Zero);
    }

    [Fact]
    public void Default_controller_limiter_is_the_max_of_per_key_backoff_and_the_global_bucket()
    {
        var time = new ManualTimeProvider();
        var limiter = RateLimiters.DefaultControllerRateLimiter<string>(time);
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("a"));
        Assert.Equal(TimeSpan.FromMilliseconds(10), limiter.When("a"));
        Assert.Equal(2, limiter.NumRequeues("a"));
        for (var i = 0; i < 98; i++) limiter.When($"k{i}"); // the burst of 100 is used up
        // a fresh key would wait 5 ms for itself but the bucket makes it 100 ms
        Assert.Equal(TimeSpan.FromMilliseconds(100), limiter.When("fresh"));
        limiter.Forget("a");
        Assert.Equal(0, limiter.NumRequeues("a"));
    }

    [Fact]
    public void Backoff_doubles_to_its_cap_with_jitter_bounded_and_resets()
    {
        var b = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), jitter: 0);
        Assert.Equal(new[] { 1.0, 2, 4, 5, 5 }, Enumerable.Range(0, 5).Select(_ => b.Next().TotalSeconds));
        b.Reset();
        Assert.Equal(TimeSpan.FromSeconds(1), b.Next());
        var j = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), jitter: 1.0, new Random(7));
        var waits = Enumerable.Range(0, 200).Select(_ => j.Next()).ToList();
        Assert.All(waits, w => Assert.InRange(w, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)));
        Assert.True(waits.Distinct().Count() > 100, "jitter spreads the waits");
    }
}
