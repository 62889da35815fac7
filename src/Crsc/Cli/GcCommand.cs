using Crsc.Controllers.Storage;
using Crsc.Storage;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc gc</c>: applies retention rules to every workload of the store through
/// <see cref="ICheckpointStore.ApplyRetention"/> and prints what was (or would be) deleted and why.
/// </summary>
internal static class GcCommand
{
    public static CommandSpec Spec() => new("gc", "Delete old checkpoints by retention rules (or, with --dry-run, show what would go).")
    {
        Description = "Applies the rules to every workload of the store (`checkpointDir`): keep the newest N, delete those\n" +
                      "older than a duration, keep each workload's checkpoints under a byte budget (oldest go first).\n" +
                      "Pinned checkpoints and the only good checkpoint of a workload are never deleted. At least one rule\n" +
                      "is required. gc opens the store for writing and takes its lock: while the daemon runs, it holds the\n" +
                      "lock and gc refuses (exit 1) without touching anything; the daemon applies retention itself.",
        Options =
        [
            new OptionSpec("--dry-run", null, "only print what would be deleted"),
            new OptionSpec("--keep-last", "N", "keep the newest N checkpoints of each workload"),
            new OptionSpec("--max-age", "DURATION", "delete checkpoints older than this (with a unit: e.g. 90m, 12h, 7d)"),
            new OptionSpec("--max-bytes", "SIZE", "keep each workload's checkpoints within this size (e.g. 500MiB, 20G)"),
            new OptionSpec("--json", null, "print the result as JSON"),
            .. CliNode.ConfigFlags("--checkpoint-dir", "--staging-dir", "--node-name"),
        ],
        Handler = RunAsync,
        Examples = ["crsc gc --keep-last 3 --dry-run", "crsc gc --max-age 7d", "crsc gc --keep-last 5 --max-bytes 20GiB"],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct) => Task.FromResult(Run(p, TimeProvider.System));

    internal static int Run(ParsedCommand p, TimeProvider time)
    {
        int? keepLast = null;
        TimeSpan? maxAge = null;
        long? maxBytes = null;
        if (p.Value("--keep-last") is { } k)
        {
            if (!int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n < 1)
                return CliOutput.Usage(p, $"--keep-last '{k}' is not a whole number of at least 1");
            keepLast = n;
        }
        if (p.Value("--max-age") is { } a)
        {
            if (!CliOutput.TryParseDuration(a, out var age)) return CliOutput.Usage(p, CliOutput.DurationProblem("--max-age", a, "a duration (e.g. 90m, 12h, 7d)", "mhd"));
            maxAge = age;
        }
        if (p.Value("--max-bytes") is { } b)
        {
            if (!CliOutput.TryParseSize(b, out var size) || size <= 0) return CliOutput.Usage(p, $"--max-bytes '{b}' is not a size (e.g. 500MiB, 20G, 1073741824)");
            maxBytes = size;
        }
        if (keepLast is null && maxAge is null && maxBytes is null)
            return CliOutput.Usage(p, "gc needs at least one rule: --keep-last, --max-age or --max-bytes");
        var options = CliNode.LoadOptions(p);
        if (options is null) return ExitCodes.Config;
        var dryRun = p.Has("--dry-run");

        if (!Directory.Exists(options.CheckpointDir))
        {
            p.Error.WriteLine($"No checkpoint store at {options.CheckpointDir}; nothing to do.");
            return ExitCodes.Ok;
        }
        RetentionResult result;
        try
        {
            using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
            {
                CheckpointDirectory = options.CheckpointDir,
                StagingDirectory = options.StagingDir,
                NodeName = options.NodeName,
                ReadOnly = dryRun, // a dry run writes nothing: no directory, no lock file, no mode change
            }, time);
            result = store.ApplyRetention(new RetentionRequest
            {
                Default = new StoreRetention(keepLast, maxAge, maxBytes),
                DryRun = dryRun,
            });
        }
        catch (StoreLockedException e)
        {
            return CliOutput.Fail(p, $"{e.Message} Nothing was deleted: the running daemon owns the store (stop it, or let it apply retention).");
        }
        catch (CheckpointStoreException e)
        {
            return CliOutput.Fail(p, $"gc of {options.CheckpointDir}: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CliOutput.Fail(p, $"gc of {options.CheckpointDir}: {e.Message}{(e is UnauthorizedAccessException ? " (the store is root only; try sudo)" : "")}");
        }

        if (p.Has("--json"))
        {
            p.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(GcReport.From(result), GcJson.Default.GcReport));
            return ExitCodes.Ok;
        }
        var verb = dryRun ? "would delete" : "deleted";
        if (result.Deleted.Count == 0)
            p.Out.WriteLine($"Nothing {(dryRun ? "would be " : "")}deleted; {CliOutput.Bytes(result.BytesRemaining)} in the store.");
        else
        {
            var now = time.GetUtcNow();
            CliOutput.Table(p.Out, ["ACTION", "ID", "NAMESPACE/WORKLOAD/CONTAINER", "SIZE", "AGE", "REASON"],
                result.Deleted.Select(d => (IReadOnlyList<string>)
                [
                    verb,
                    d.Checkpoint.Id,
                    $"{d.Checkpoint.Namespace}/{d.Checkpoint.Workload}/{d.Checkpoint.Container}",
                    CliOutput.Bytes(d.Checkpoint.Size),
                    CliOutput.Age(d.Checkpoint.CreatedAt, now),
                    Reason(d.Reason, keepLast, p.Value("--max-age"), p.Value("--max-bytes")),
                ]));
            p.Out.WriteLine($"{(dryRun ? "Would free" : "Freed")} {CliOutput.Bytes(result.BytesFreed)} in {result.Deleted.Count} checkpoint(s); " +
                            $"{CliOutput.Bytes(result.BytesRemaining)} {(dryRun ? "would remain" : "remain")}.");
        }
        if (dryRun) p.Out.WriteLine("Dry run: nothing was deleted.");
        return ExitCodes.Ok;
    }

    private static string Reason(RetentionReason reason, int? keepLast, string? maxAge, string? maxBytes) => reason switch
    {
        RetentionReason.KeepLast => $"beyond the newest {keepLast}",
        RetentionReason.MaxAge => $"older than {maxAge}",
        RetentionReason.MaxBytes => $"workload over {maxBytes}",
        RetentionReason.GlobalQuota => "store over its quota",
        _ => reason.ToString(),
    };
}

internal sealed record GcDeletion(string Id, string Namespace, string Workload, string Container, long SizeBytes, DateTimeOffset CreatedAt, string Reason);

internal sealed record GcReport(bool DryRun, List<GcDeletion> Deleted, long BytesFreed, long BytesRemaining)
{
    public static GcReport From(RetentionResult r) => new(r.DryRun,
        [.. r.Deleted.Select(d => new GcDeletion(d.Checkpoint.Id, d.Checkpoint.Namespace, d.Checkpoint.Workload, d.Checkpoint.Container,
            d.Checkpoint.Size, d.Checkpoint.CreatedAt, d.Reason.ToString()))],
        r.BytesFreed, r.BytesRemaining);
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(GcReport))]
internal sealed partial class GcJson : System.Text.Json.Serialization.JsonSerializerContext;
