using System.Globalization;
using System.Text;

namespace Crsc.Controllers.Metrics;

/// <summary>
/// A small metrics registry that writes the Prometheus text exposition format (version 0.0.4).
/// Counters, gauges (set or computed when scraped) and histograms, each with optional labels.
/// Thread-safe; no I/O: the node API writes <see cref="WriteTo"/> into its response.
/// </summary>
public sealed class MetricsRegistry
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly Lock _gate = new();
    private readonly List<Metric> _metrics = [];

    public Counter Counter(string name, string help, params string[] labelNames) => Add(new Counter(name, help, labelNames));
    public Gauge Gauge(string name, string help, params string[] labelNames) => Add(new Gauge(name, help, labelNames));
    public Histogram Histogram(string name, string help, double[] buckets, params string[] labelNames) => Add(new Histogram(name, help, buckets, labelNames));

    /// <summary>A gauge whose value is computed at scrape time.</summary>
    public void GaugeCallback(string name, string help, Func<double> value) => Add(new CallbackGauge(name, help, value));

    private T Add<T>(T metric) where T : Metric
    {
        Metric.CheckName(metric.Name);
        lock (_gate)
        {
            if (_metrics.Any(m => m.Name == metric.Name)) throw new InvalidOperationException($"metric {metric.Name} is registered twice");
            _metrics.Add(metric);
        }
        return metric;
    }

    public void WriteTo(TextWriter w)
    {
        Metric[] metrics;
        lock (_gate) metrics = [.. _metrics];
        foreach (var m in metrics)
        {
            w.Write("# HELP "); w.Write(m.Name); w.Write(' '); w.Write(EscapeHelp(m.Help)); w.Write('\n');
            w.Write("# TYPE "); w.Write(m.Name); w.Write(' '); w.Write(m.Type); w.Write('\n');
            m.WriteSamples(w);
        }
    }

    public string Render()
    {
        var sw = new StringWriter(CultureInfo.InvariantCulture);
        WriteTo(sw);
        return sw.ToString();
    }

    private static string EscapeHelp(string help) => help.Replace("\\", "\\\\").Replace("\n", "\\n");
}

public abstract class Metric(string name, string help, string[] labelNames)
{
    public string Name { get; } = name;
    public string Help { get; } = help;
    protected string[] LabelNames { get; } = labelNames;
    public abstract string Type { get; }
    internal abstract void WriteSamples(TextWriter w);

    internal static void CheckName(string name)
    {
        if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] is '_' or ':') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':'))
            throw new ArgumentException($"'{name}' is not a valid metric name", nameof(name));
    }

    protected string LabelKey(string[] values)
    {
        if (values.Length != LabelNames.Length)
            throw new ArgumentException($"metric {Name} takes {LabelNames.Length} label value(s) ({string.Join(", ", LabelNames)}), got {values.Length}");
        return string.Join('\u0001', values);
    }

    protected string Labels(string key, string? extraName = null, string? extraValue = null)
    {
        var values = LabelNames.Length == 0 ? [] : key.Split('\u0001');
        if (values.Length == 0 && extraName is null) return "";
        var sb = new StringBuilder("{");
        for (var i = 0; i < LabelNames.Length; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(LabelNames[i]).Append("=\"").Append(EscapeLabel(values[i])).Append('"');
        }
        if (extraName is not null)
        {
            if (LabelNames.Length > 0) sb.Append(',');
            sb.Append(extraName).Append("=\"").Append(extraValue).Append('"');
        }
        return sb.Append('}').ToString();
    }

    internal static string EscapeLabel(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    internal static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN"
        : v.ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e'); // 1e-08, as Prometheus' own clients write it
}

public sealed class Counter(string name, string help, string[] labelNames) : Metric(name, help, labelNames)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, double> _values = [];
    public override string Type => "counter";

    public void Inc(double by = 1, params string[] labels)
    {
        if (by < 0) throw new ArgumentOutOfRangeException(nameof(by), "a counter only goes up");
        var key = LabelKey(labels);
        lock (_gate) _values[key] = _values.GetValueOrDefault(key) + by;
    }

    public double Value(params string[] labels) { lock (_gate) return _values.GetValueOrDefault(LabelKey(labels)); }

    internal override void WriteSamples(TextWriter w)
    {
        KeyValuePair<string, double>[] values;
        lock (_gate) values = [.. _values];
        foreach (var (k, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal)) w.Write($"{Name}{Labels(k)} {Format(v)}\n");
    }
}

public sealed class Gauge(string name, string help, string[] labelNames) : Metric(name, help, labelNames)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, double> _values = [];
    public override string Type => "gauge";

    public void Set(double value, params string[] labels) { var key = LabelKey(labels); lock (_gate) _values[key] = value; }
    public void Add(double by, params string[] labels) { var key = LabelKey(labels); lock (_gate) _values[key] = _values.GetValueOrDefault(key) + by; }
    public double Value(params string[] labels) { lock (_gate) return _values.GetValueOrDefault(LabelKey(labels)); }

    internal override void WriteSamples(TextWriter w)
    {
        KeyValuePair<string, double>[] values;
        lock (_gate) values = [.. _values];
        foreach (var (k, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal)) w.Write($"{Name}{Labels(k)} {Format(v)}\n");
    }
}

internal sealed class CallbackGauge(string name, string help, Func<double> value) : Metric(name, help, [])
{
    public override string Type => "gauge";
    internal override void WriteSamples(TextWriter w) => w.Write($"{Name} {Format(value())}\n");
}

public sealed class Histogram : Metric
{
    private readonly Lock _gate = new();
    private readonly double[] _bounds;
    private readonly Dictionary<string, (long[] Buckets, double Sum, long Count)> _series = [];
    public override string Type => "histogram";

    /// <summary>Exponential buckets for durations in seconds: 5 ms … ~5 min.</summary>
    public static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    public Histogram(string name, string help, double[] buckets, string[] labelNames) : base(name, help, labelNames)
    {
        if (buckets.Length == 0 || buckets.Zip(buckets.Skip(1)).Any(p => p.First >= p.Second))
            throw new ArgumentException("histogram buckets must be non-empty and strictly increasing", nameof(buckets));
        _bounds = buckets;
    }

    public void Observe(double value, params string[] labels)
    {
        var key = LabelKey(labels);
        lock (_gate)
        {
            var s = _series.TryGetValue(key, out var e) ? e : (new long[_bounds.Length], 0d, 0L);
            for (var i = 0; i < _bounds.Length; i++) if (value <= _bounds[i]) s.Item1[i]++;
            _series[key] = (s.Item1, s.Item2 + value, s.Item3 + 1);
        }
    }

    internal override void WriteSamples(TextWriter w)
    {
        List<(string Key, long[] Buckets, double Sum, long Count)> series;
        lock (_gate) series = [.. _series.Select(p => (p.Key, (long[])p.Value.Buckets.Clone(), p.Value.Sum, p.Value.Count))];
        foreach (var (k, buckets, sum, count) in series.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            for (var i = 0; i < _bounds.Length; i++) w.Write($"{Name}_bucket{Labels(k, "le", Format(_bounds[i]))} {buckets[i]}\n");
            w.Write($"{Name}_bucket{Labels(k, "le", "+Inf")} {count}\n");
            w.Write($"{Name}_sum{Labels(k)} {Format(sum)}\n");
            w.Write($"{Name}_count{Labels(k)} {count}\n");
        }
    }
}
