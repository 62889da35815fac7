using System.Diagnostics;
using Crsc.Controllers.Metrics;

namespace Crsc.Daemon;

/// <summary>The first metrics: build info, uptime and process memory/CPU (names as Prometheus clients use them).</summary>
internal static class ProcessMetrics
{
    public static void Register(MetricsRegistry registry, TimeProvider time)
    {
        var started = time.GetUtcNow();
        var build = registry.Gauge("crsc_build_info", "crsc build: version, git commit and flavour (aot/jit); always 1", "version", "commit", "flavour");
        build.Set(1, BuildInfo.Version, BuildInfo.Commit, BuildInfo.Flavour);
        registry.GaugeCallback("crsc_uptime_seconds", "seconds since the daemon started", () => (time.GetUtcNow() - started).TotalSeconds);
        registry.GaugeCallback("process_start_time_seconds", "start time of the process since the Unix epoch in seconds", () => started.ToUnixTimeMilliseconds() / 1000.0);
        registry.GaugeCallback("process_resident_memory_bytes", "resident memory size in bytes", () => ReadStatusKb("VmRSS:") * 1024);
        registry.GaugeCallback("process_virtual_memory_bytes", "virtual memory size in bytes", () => ReadStatusKb("VmSize:") * 1024);
        registry.GaugeCallback("process_cpu_seconds_total", "user and system CPU time spent in seconds", () =>
        {
            using var p = Process.GetCurrentProcess();
            return p.TotalProcessorTime.TotalSeconds;
        });
        registry.GaugeCallback("process_open_fds", "number of open file descriptors", () =>
        {
            try { return Directory.GetFiles("/proc/self/fd").Length; }
            catch (IOException) { return double.NaN; }
        });
        registry.GaugeCallback("dotnet_gc_heap_bytes", "bytes allocated on the managed heap", () => GC.GetTotalMemory(false));
    }

    /// <summary>A "Name:   123 kB" line of /proc/self/status, in kB; NaN when unavailable.</summary>
    internal static double ReadStatusKb(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return double.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        return double.NaN;
    }
}
