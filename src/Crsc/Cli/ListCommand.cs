using System.Text.Json;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc list [NS[/WORKLOAD]]</c>: the committed checkpoints of this node's store, read directly from
/// <c>checkpointDir</c> without the store's lock (<see cref="ReadOnlyCheckpointStore"/>), so it works beside a running daemon.
/// </summary>
internal static class ListCommand
{
    public static CommandSpec Spec() => new("list", "List the checkpoints stored on this node, newest first.")
    {
        Description = "Reads the archive store (`checkpointDir`, --checkpoint-dir) directly and read-only: it works while\n" +
                      "the daemon runs and does not need it. Only committed checkpoints are listed (a manifest whose archive\n" +
                      "exists); in-flight archives in staging are not. Columns: id, namespace/workload/container, node,\n" +
                      "stored size, short digest, age, and whether the manifest's MAC verifies with the node key (verified,\n" +
                      "unsigned, INVALID-MAC, other-key; unchecked when the key under stateDir cannot be read, e.g. not root).",
        Arguments = [new ArgumentSpec("NS[/WORKLOAD]", "only this namespace, or this workload of it", Required: false)],
        Options =
        [
            new OptionSpec("--json", null, "print a JSON array of the manifests (with archive paths)"),
            .. CliNode.ConfigFlags("--checkpoint-dir", "--state-dir"),
        ],
        Handler = RunAsync,
        Examples = ["crsc list", "crsc list shop", "crsc list shop/cart --json | jq '.[0].id'", "crsc list --checkpoint-dir /mnt/backup/checkpoints"],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct) => Task.FromResult(Run(p, TimeProvider.System));

    internal static int Run(ParsedCommand p, TimeProvider time)
    {
        string? ns = null, workload = null;
        if (p.Arguments.FirstOrDefault() is { } filter)
        {
            var parts = filter.Split('/');
            if (parts.Length > 2) return CliOutput.Usage(p, $"'{filter}' is not NS or NS/WORKLOAD");
            ns = parts[0];
            workload = parts.Length == 2 ? parts[1] : null;
            if (!TargetNames.IsLabel(ns)) return CliOutput.Usage(p, $"namespace '{ns}' is not a valid DNS-1123 label");
            if (workload is not null && !TargetNames.IsSubdomain(workload))
                return CliOutput.Usage(p, $"workload '{workload}' is not a valid DNS-1123 subdomain");
        }
        var options = CliNode.LoadOptions(p);
        if (options is null) return ExitCodes.Config;

        var store = new ReadOnlyCheckpointStore(options.CheckpointDir, CliNode.LoadNodeKey(p, options));
        IReadOnlyList<CheckpointInfo> items;
        try
        {
            items = store.Exists ? store.List(new CheckpointFilter(ns, workload)) : [];
        }
        catch (UnauthorizedAccessException e)
        {
            return CliOutput.Fail(p, $"cannot read the checkpoint store {store.CheckpointDirectory}: {e.Message} (it is root only; try sudo)");
        }
        catch (IOException e)
        {
            return CliOutput.Fail(p, $"cannot read the checkpoint store {store.CheckpointDirectory}: {e.Message}");
        }
        foreach (var skipped in store.Skipped) p.Error.WriteLine($"crsc: warning: skipped unreadable manifest {skipped}");

        if (p.Has("--json"))
        {
            p.Out.WriteLine(JsonSerializer.Serialize([.. items], NodeApiJson.Default.ListCheckpointInfo));
            return ExitCodes.Ok;
        }
        if (items.Count == 0)
        {
            p.Error.WriteLine(store.Exists
                ? $"No checkpoints{(ns is null ? "" : " for " + p.Arguments[0])} in {store.CheckpointDirectory}."
                : $"No checkpoint store at {store.CheckpointDirectory}.");
            return ExitCodes.Ok;
        }
        var now = time.GetUtcNow();
        CliOutput.Table(p.Out, ["ID", "NAMESPACE/WORKLOAD/CONTAINER", "NODE", "SIZE", "DIGEST", "AGE", "REASON", "MAC"],
            items.Select(i => (IReadOnlyList<string>)
            [
                i.Id + (i.Pinned ? " (pinned)" : ""),
                $"{i.Namespace}/{i.Workload}/{i.Container}",
                i.NodeName ?? "-",
                CliOutput.Bytes(i.Size),
                CliOutput.ShortDigest(i.Digest),
                CliOutput.Age(i.CreatedAt, now),
                i.Reason ?? "-",
                CliNode.Authenticity(i.Authenticity),
            ]));
        return ExitCodes.Ok;
    }
}
