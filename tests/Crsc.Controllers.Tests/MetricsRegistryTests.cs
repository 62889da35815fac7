using Crsc.Controllers.Metrics;

namespace Crsc.Controllers.Tests;

public sealed class MetricsRegistryTests
{
    [Fact]
    public void A_histogram_renders_cumulative_buckets_an_Inf_bucket_sum_and_count_per_label_set()
    {
        var registry = new MetricsRegistry();
        var h = registry.Histogram("t_seconds", "test", [1e-8, 0.5, 2], "name");
        h.Observe(0.25, "x");
        h.Observe(0.5, "x"); // on a bound: counted in it
        h.Observe(3, "x");   // above every bound: only +Inf
        h.Observe(0, "y");

        Assert.Equal(
            """
            # HELP t_seconds test
            # TYPE t_seconds histogram
            t_seconds_bucket{name="x",le="1e-08"} 0
            t_seconds_bucket{name="x",le="0.5"} 2
            t_seconds_bucket{name="x",le="2"} 2
            t_seconds_bucket{name="x",le="+Inf"} 3
            t_seconds_sum{name="x"} 3.75
            t_seconds_count{name="x"} 3
            t_seconds_bucket{name="y",le="1e-08"} 1
            t_seconds_bucket{name="y",le="0.5"} 1
            t_seconds_bucket{name="y",le="2"} 1
            t_seconds_bucket{name="y",le="+Inf"} 1
            t_seconds_sum{name="y"} 0
            t_seconds_count{name="y"} 1

            """.ReplaceLineEndings("\n"), registry.Render());
    }

    [Theory]
    [InlineData(1e-8, "1e-08")]
    [InlineData(1e21, "1e+21")]
    [InlineData(0.005, "0.005")]
    [InlineData(1000, "1000")]
    public void Numbers_are_written_as_Prometheus_clients_write_them(double value, string text)
    {
        var registry = new MetricsRegistry();
        registry.Gauge("g", "test").Set(value);
        Assert.Contains($"\ng {text}\n", registry.Render());
    }

    [Fact]
    public void Histogram_buckets_must_increase_and_label_values_must_match_the_names()
    {
        var registry = new MetricsRegistry();
        Assert.Throws<ArgumentException>(() => registry.Histogram("h1", "test", [1, 1]));
        Assert.Throws<ArgumentException>(() => registry.Histogram("h2", "test", []));
        var h = registry.Histogram("h3", "test", [1], "a", "b");
        var e = Assert.Throws<ArgumentException>(() => h.Observe(1, "only-a"));
        Assert.Contains("h3 takes 2 label value(s) (a, b), got 1", e.Message);
    }
}
