using Crsc.Daemon;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc checkpoint NS/POD[/CONTAINER]</c>: asks the local daemon (node API socket) to checkpoint a container of a pod
/// on this node, prints its progress and the stored archive.
/// </summary>
internal static class CheckpointCommand
{
    public static CommandSpec Spec() => new("checkpoint", "Checkpoint a container of a pod on this node through the local daemon.")
    {
        Description = "Asks the crsc daemon on this node (over its Unix socket, --socket or `socket` in the configuration)\n" +
                      "to checkpoint the container through the container runtime and store the archive. Prints each\n" +
                      "step as it happens, then the archive: id, path, size and digest. Without CONTAINER the pod must\n" +
                      "have exactly one app container. Interrupting the command cancels the checkpoint.\n" +
                      "Exit 0 when the archive is stored, 1 when the checkpoint failed or the daemon is unreachable,\n" +
                      "2 for bad usage (names must be DNS-1123), 78 for invalid configuration.",
        Arguments = [new ArgumentSpec("NS/POD[/CONTAINER]", "namespace, pod and optionally container")],
        Options =
        [
            new OptionSpec("--timeout", "DURATION", "give up after this long (e.g. 90s, 5m); default: the daemon's per-checkpoint timeout"),
            new OptionSpec("--json", null, "print the daemon's JSON lines as they arrive (progress, then result or error)"),
            .. CliNode.ConfigFlags("--socket"),
        ],
        Handler = RunAsync,
        Examples =
        [
            "crsc checkpoint default/counter-7d9f8b6c5-x2k4q",
            "crsc checkpoint shop/cart-0/app --timeout 5m",
            "crsc checkpoint shop/cart-0/app --json | jq .result.digest",
        ],
    };

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var target = p.Arguments[0];
        var parts = target.Split('/');
        if (parts.Length is < 2 or > 3)
            return CliOutput.Usage(p, $"'{target}' is not NS/POD or NS/POD/CONTAINER");
        var (ns, pod, container) = (parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
        if (TargetNames.Validate(ns, pod, container ?? "") is { } invalid)
            return CliOutput.Usage(p, invalid);
        if (CliNode.ParseTimeout(p, TimeSpan.Zero, out var timeout) is { } badTimeout) return CliOutput.Usage(p, badTimeout);
        int? timeoutSeconds = p.Value("--timeout") is null ? null : (int)Math.Ceiling(timeout.TotalSeconds);
        var options = CliNode.LoadOptions(p);
        if (options is null) return ExitCodes.Config;
        var json = p.Has("--json");

        using var client = new NodeApiClient(options.Socket);
        // the daemon enforces the timeout; the client allows a margin for the store and the answer
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeoutSeconds is { } ts) cts.CancelAfter(TimeSpan.FromSeconds(ts + 30));
        var request = new CheckpointApiRequest { Namespace = ns, Pod = pod, Container = container, TimeoutSeconds = timeoutSeconds };
        if (!json) p.Out.WriteLine($"Checkpointing {target} through {options.Socket}");
        CheckpointStreamLine last;
        // byte progress of one step (e.g. ingesting, reported per MiB) is shown at most once a second
        (string? Stage, string? Message) shown = default;
        var shownAt = 0L;
        try
        {
            last = await client.CheckpointAsync(request, (line, raw) =>
            {
                if (json) { p.Out.WriteLine(raw); return; }
                if (line.Stage is null) return;
                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                if (shown == (line.Stage, line.Message) && System.Diagnostics.Stopwatch.GetElapsedTime(shownAt, now) < TimeSpan.FromSeconds(1)) return;
                shown = (line.Stage, line.Message);
                shownAt = now;
                p.Out.WriteLine(ProgressLine(line));
            }, cts.Token);
        }
        catch (NodeApiUnavailableException e)
        {
            return CliOutput.Fail(p, e.Message);
        }
        catch (NodeApiException e)
        {
            return CliOutput.Fail(p, $"checkpoint of {target}: {e.Message}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return CliOutput.Fail(p, $"checkpoint of {target}: no answer from the daemon within --timeout {p.Value("--timeout")} (+30s)");
        }
        catch (OperationCanceledException)
        {
            return CliOutput.Fail(p, $"checkpoint of {target}: interrupted; the daemon cancels it");
        }

        if (last.Error is { } error)
        {
            p.Error.WriteLine($"crsc: checkpoint of {target} failed ({error.Kind}): {error.Message}");
            if (error.Candidates is { Count: > 0 } candidates)
                p.Error.WriteLine($"crsc: the pod's containers: {string.Join(", ", candidates)} (name one: {ns}/{pod}/CONTAINER)");
            if (error.CriuLog is { Length: > 0 } log)
            {
                p.Error.WriteLine($"--- end of CRIU's log{(error.CriuLogPath is { } lp ? $" ({lp})" : "")} ---");
                p.Error.WriteLine(log.TrimEnd());
                p.Error.WriteLine("---");
            }
            return ExitCodes.Failure;
        }
        if (!json && last.Result is { } r)
        {
            p.Out.WriteLine($"Checkpoint {r.Id} stored");
            p.Out.WriteLine($"  path:    {r.Path}");
            p.Out.WriteLine($"  size:    {CliOutput.Bytes(r.SizeBytes)} ({r.SizeBytes} bytes{(r.UncompressedSizeBytes is { } u && u != r.SizeBytes ? $", {CliOutput.Bytes(u)} uncompressed" : "")})");
            p.Out.WriteLine($"  digest:  {r.Digest}");
            p.Out.WriteLine($"  node:    {r.Node}");
            p.Out.WriteLine($"  time:    {r.TotalMs} ms ({r.RuntimeMs} ms in the runtime)");
        }
        return ExitCodes.Ok;
    }

    private static string ProgressLine(CheckpointStreamLine l) =>
        $"  [{l.Stage}] {l.Message}{(l.Bytes is { } b ? $" ({CliOutput.Bytes(b)})" : "")}".TrimEnd();
}
