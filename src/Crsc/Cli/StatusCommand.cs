using Crsc.Daemon;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc status</c>: this node as its daemon sees it — health, what the runtime can do (with the setting that turns
/// restore on when it is off), the store, the schedules of this node's pods and the newest checkpoints.
/// </summary>
internal static class StatusCommand
{
    public static CommandSpec Spec() => new("status", "Show this node's crsc daemon: health, runtime capability, store, schedules, recent checkpoints.")
    {
        Description = "Asks the crsc daemon on this node (over its Unix socket, --socket or `socket` in the configuration; root\n" +
                      "only). Works while the API server is away: everything comes from the daemon itself. The runtime rows\n" +
                      "say whether the node's container runtime checkpoints and restores, and when it does not, why and the\n" +
                      "exact setting that changes it (the same verdicts as `crsc preflight` and `kubectl get ckn`).\n" +
                      "Exit status: 0 when the daemon answered (whatever its health), 1 when it could not be reached.",
        Options =
        [
            new OptionSpec("--json", null, "print the daemon's answer as JSON"),
            .. CliNode.ConfigFlags("--socket"),
        ],
        Handler = RunAsync,
        Examples = ["crsc status", "crsc status --json | jq .runtime.restore"],
    };

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var options = CliNode.LoadOptions(p);
        if (options is null) return ExitCodes.Config;
        using var client = new NodeApiClient(options.Socket);
        NodeStatusResponse status;
        string json;
        try
        {
            (status, json) = await client.StatusAsync(ct);
        }
        catch (NodeApiUnavailableException e)
        {
            return CliOutput.Fail(p, e.Message);
        }
        catch (NodeApiException e)
        {
            return CliOutput.Fail(p, $"status: {e.Message}");
        }
        if (p.Has("--json"))
        {
            p.Out.WriteLine(json);
            return ExitCodes.Ok;
        }
        Print(p.Out, status, TimeProvider.System.GetUtcNow());
        return ExitCodes.Ok;
    }

    internal static void Print(TextWriter o, NodeStatusResponse s, DateTimeOffset now)
    {
        o.WriteLine($"Node {s.Node}: crsc {s.Version}, {s.State}");
        if (s.NodeState is { GoingAway: true } away)
            o.WriteLine($"Node going away: {away.Reason}{(away.Detail is { } d ? $" ({d})" : "")}, since {(away.Since is { } since ? CliOutput.Age(since, now) + " ago" : "-")}");
        else if (s.NodeState is not null)
            o.WriteLine("Node going away: no");
        o.WriteLine();
        if (s.Runtime is { } r)
        {
            o.WriteLine($"Runtime: {r.Name} {r.Version}".TrimEnd());
            Verdict(o, "checkpoint", r.Checkpoint);
            Verdict(o, "restore", r.Restore);
        }
        else
        {
            o.WriteLine("Runtime: not probed yet (the daemon probes it at start and every 30 s)");
        }
        if (s.PodCheckpointApi is { } pod) o.WriteLine($"  pod-level checkpoint API (KEP-5823) on the API server: {pod}");
        o.WriteLine();
        o.WriteLine($"Store: {s.Store.Checkpoints} checkpoint(s), {CliOutput.Bytes(s.Store.Bytes)}");
        o.WriteLine();
        o.WriteLine("Health:");
        foreach (var h in s.Health)
        {
            var mark = h.Status switch { "healthy" => "[+]", "degraded" => "[~]", _ => "[-]" };
            o.WriteLine($"  {mark} {h.Component,-12} {h.Message}");
        }
        o.WriteLine();
        o.WriteLine(s.Schedules.Count == 0 ? "Schedules: none of this node's pods has one" : $"Schedules ({s.Schedules.Count}):");
        foreach (var sc in s.Schedules)
        {
            var when = new List<string>();
            if (sc.Every is { } every) when.Add($"every {every}");
            if (sc.Suspended == true) when.Add("suspended");
            when.Add(sc.LastCheckpointTime is { } last ? $"last {CliOutput.Age(last, now)} ago" : "no checkpoint yet");
            if (sc.NextCheckpointTime is { } next) when.Add(next > now ? $"next in {CliOutput.Age(now, next)}" : "next due now");
            if (sc.Ready is { } ready) when.Add($"Ready {ready}");
            o.WriteLine($"  {sc.Namespace}/{sc.Name}  {sc.Target}  {string.Join(", ", when)}");
        }
        o.WriteLine();
        o.WriteLine(s.Checkpoints.Count == 0 ? "Recent checkpoints: none in the store" : "Recent checkpoints:");
        foreach (var c in s.Checkpoints)
            o.WriteLine($"  {c.Namespace}/{c.Workload}/{c.Container}  {c.Id}  {CliOutput.Bytes(c.Size)}  {CliOutput.Age(c.CreatedAt, now)} ago");
    }

    private static void Verdict(TextWriter o, string what, NodeStatusVerdict v)
    {
        o.WriteLine($"  {what,-11} {v.State}: {v.Reason}");
        if (v.Fix is { Length: > 0 } fix) o.WriteLine($"  {"",-11} to change it: {fix}");
    }
}
