using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Crsc.Benchmarks;

/// <summary>One benchmark: measures, then reports figures (and ratios against a baseline run in the same process).</summary>
public interface IBenchmark
{
    /// <summary>Short name used on the command line, e.g. <c>startup</c>.</summary>
    string Name { get; }
    string Description { get; }
    Task RunAsync(BenchContext ctx, CancellationToken ct);
}

/// <summary>Where benchmarks find the repository and the published binary, and how they report.</summary>
public sealed class BenchContext(string repoRoot, TextWriter output)
{
    public string RepoRoot { get; } = repoRoot;
    /// <summary>The Native AOT binary (<c>make publish</c> puts it here).</summary>
    public string AotBinary => Path.Combine(RepoRoot, "bin", "crsc");
    public string WorkDir { get; } = Directory.CreateTempSubdirectory("crsc-bench-").FullName;

    /// <summary>Prints one figure: <c>bench  name  value unit  [target]</c>.</summary>
    public void Report(string bench, string metric, double value, string unit, string? target = null)
        => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{bench,-22} {metric,-40} {value,14:0.###} {unit,-6}{(target is null ? "" : "  target " + target)}"));

    /// <summary>Prints a ratio of a measured figure against a baseline measured in the same run.</summary>
    public void Ratio(string bench, string metric, double value, double baseline, string? target = null)
        => Report(bench, metric, baseline == 0 ? double.NaN : value / baseline, "x", target);

    public static async Task<TimeSpan> TimeAsync(Func<Task> action)
    {
        var sw = Stopwatch.StartNew();
        await action();
        return sw.Elapsed;
    }
}

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = FindRepoRoot();
        var all = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name, StringComparer.Ordinal)
            .ToList();
        if (args is ["--list"] or ["-l"])
        {
            foreach (var b in all) Console.WriteLine($"{b.Name,-20} {b.Description}");
            return 0;
        }
        var chosen = args.Length == 0 ? all : all.Where(b => args.Contains(b.Name)).ToList();
        var unknown = args.Where(a => all.All(b => b.Name != a)).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"unknown benchmark(s): {string.Join(", ", unknown)}; known: {string.Join(", ", all.Select(b => b.Name))}");
            return 2;
        }
        var ctx = new BenchContext(root, Console.Out);
        var failed = 0;
        try
        {
            foreach (var b in chosen)
            {
                Console.WriteLine($"== {b.Name}: {b.Description}");
                try { await b.RunAsync(ctx, CancellationToken.None); }
                catch (Exception e) { failed++; Console.WriteLine($"{b.Name}: FAILED: {e.Message}"); }
            }
        }
        finally
        {
            try { Directory.Delete(ctx.WorkDir, true); } catch (IOException) { }
        }
        return failed == 0 ? 0 : 1;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "crsc.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
