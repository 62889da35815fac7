using System.Globalization;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Daemon;
using Crsc.Kube;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc restore NS/DEPLOYMENT</c>: creates a <see cref="Restore"/> through the API server (the kubeconfig of the
/// configuration, as the daemon finds it) and follows it to its end, printing each change of its status.
/// </summary>
internal static class RestoreCommand
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);
    private const string Sidecar = "crsc-interceptor";

    public static CommandSpec Spec() => new("restore", "Restore a Deployment's container in place from a checkpoint, and follow it.")
    {
        Description = "Creates a Restore (crsc.io/v1alpha1) for the Deployment through the API server and follows it: the crsc\n" +
                      "daemon that leads picks the checkpoint (--checkpoint, or the latest completed one of the container),\n" +
                      "patches the pod's container image to the checkpoint image and waits for the container to run again:\n" +
                      "same pod, same IP, same volumes. After --max-attempts failed attempts it applies --fallback (ColdStart\n" +
                      "puts the original image back; Fail leaves the pod as it is). Each change of the Restore's phase is\n" +
                      "printed, then its final message. Without --container the Deployment must have exactly one container\n" +
                      "besides crsc's sidecar. The API server is the kubeconfig's (--kubeconfig, $CRSC_KUBECONFIG, then\n" +
                      "$KUBECONFIG, or `kubeconfig` in the configuration file), or the cluster's when run in a pod.\n" +
                      "Interrupting the command (or --timeout) stops following; the Restore goes on in the cluster.\n" +
                      "The node refuses a checkpoint of its store whose manifest MAC does not verify with its key, or that\n" +
                      "is of another workload (the Restore then fails or falls back, naming the check); --allow-unauthenticated\n" +
                      "accepts an archive without a MAC (an older crsc's) or with another key's, never a wrong MAC.\n" +
                      "Exit 0 when Restored, 1 when Failed, FellBack or not finished in time (or the API server refused),\n" +
                      "2 for bad usage (names must be DNS-1123), 78 when no API server is configured or the configuration\n" +
                      "is invalid.",
        Arguments = [new ArgumentSpec("NS/DEPLOYMENT", "namespace and Deployment")],
        Options =
        [
            new OptionSpec("--container", "NAME", "the container to restore (default: the only one besides crsc's sidecar)"),
            new OptionSpec("--checkpoint", "NAME", "the ContainerCheckpoint to restore from (default: the latest completed one)"),
            new OptionSpec("--fallback", "ColdStart|Fail", "what to do when every attempt failed (default ColdStart)"),
            new OptionSpec("--max-attempts", "N", $"restore attempts before the fallback, 1 to {RestoreSpec.MaxMaxAttempts} (default {RestoreSpec.DefaultMaxAttempts})"),
            new OptionSpec("--no-wait", null, "create the Restore, print its name and return"),
            new OptionSpec("--timeout", "DURATION", $"stop following after this long (e.g. 90s, 5m; default {(int)DefaultTimeout.TotalMinutes}m)"),
            new OptionSpec("--json", null, "print the Restore as JSON, one line each time its status changes"),
            new OptionSpec("--allow-unauthenticated", null, "restore even from an archive without a MAC or with another key's (a warning is printed)"),
            .. CliNode.ConfigFlags("--kubeconfig"),
        ],
        Handler = RunAsync,
        Examples =
        [
            "crsc restore shop/cart",
            "crsc restore shop/cart --container app --checkpoint cart-app-20260101120000",
            "crsc restore shop/cart --fallback Fail --max-attempts 1 --timeout 5m",
            "crsc restore shop/cart --no-wait --json | jq -r .metadata.name",
        ],
    };

    private sealed record Request(string Namespace, string Deployment, string? Container, string? Checkpoint,
        RestoreFallback Fallback, int MaxAttempts, TimeSpan Timeout, bool Wait, bool Json, bool AllowUnauthenticated);

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        if (Parse(p, out var usage) is not { } request) return CliOutput.Usage(p, usage!);
        var target = $"{request.Namespace}/{request.Deployment}";
        return await CliNode.WithApiServerAsync(p, $"restore of {target}", api => RestoreAsync(p, api, request, target, ct));
    }

    private static Request? Parse(ParsedCommand p, out string? usage)
    {
        usage = CliNode.ParseNamespacedName(p.Arguments[0], "deployment", out var ns, out var deployment);
        if (usage is not null) return null;
        usage = CliNode.ContainerProblem(p);
        if (usage is null && p.Value("--checkpoint") is { } k && !TargetNames.IsSubdomain(k))
            usage = $"--checkpoint '{k}' is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)";
        if (usage is not null) return null;

        var fallback = RestoreFallback.ColdStart;
        if (p.Value("--fallback") is { } f)
        {
            if (Enum.GetValues<RestoreFallback>().FirstOrDefault(v => string.Equals(v.ToString(), f, StringComparison.OrdinalIgnoreCase)) is var named
                && string.Equals(named.ToString(), f, StringComparison.OrdinalIgnoreCase))
            {
                fallback = named;
            }
            else
            {
                usage = $"--fallback '{f}' is not ColdStart or Fail";
                return null;
            }
        }
        var maxAttempts = RestoreSpec.DefaultMaxAttempts;
        if (p.Value("--max-attempts") is { } m
            && (!int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out maxAttempts) || maxAttempts < 1 || maxAttempts > RestoreSpec.MaxMaxAttempts))
        {
            usage = $"--max-attempts '{m}' is not a whole number from 1 to {RestoreSpec.MaxMaxAttempts}";
            return null;
        }
        usage = CliNode.ParseTimeout(p, DefaultTimeout, out var timeout);
        if (usage is not null) return null;
        return new Request(ns, deployment, p.Value("--container"), p.Value("--checkpoint"), fallback, maxAttempts, timeout,
            !p.Has("--no-wait"), p.Has("--json"), p.Has("--allow-unauthenticated"));
    }

    private static async Task<int> RestoreAsync(ParsedCommand p, KubeApi api, Request request, string target, CancellationToken ct)
    {
        Deployment deployment;
        try
        {
            deployment = await api.Resource(Resources.Deployments).GetAsync(request.Namespace, request.Deployment, ct);
        }
        catch (NotFoundException)
        {
            return CliOutput.Fail(p, $"deployment {target} not found");
        }
        var containers = deployment.Spec.Template.Spec.Containers.Select(c => c.Name).Where(n => n != Sidecar).ToList();
        var container = request.Container;
        if (container is null)
        {
            if (containers.Count != 1)
                return CliOutput.Fail(p, $"deployment {target} has {(containers.Count == 0 ? "no containers" : "several containers: " + string.Join(", ", containers))}; name one with --container");
            container = containers[0];
        }
        else if (!deployment.Spec.Template.Spec.Containers.Any(c => c.Name == container))
        {
            return CliOutput.Fail(p, $"deployment {target} has no container '{container}'; it has: {string.Join(", ", containers)}");
        }

        var restores = api.Resource(CrscResources.Restores);
        if (request.AllowUnauthenticated)
            p.Error.WriteLine("crsc: warning: --allow-unauthenticated: the node restores even from an archive whose manifest has no MAC " +
                              "or another key's; only do this for archives you know (e.g. written by a crsc without manifest MACs)");
        var restore = new Restore
        {
            Metadata = new ObjectMeta
            {
                Namespace = request.Namespace,
                GenerateName = GenerateName(request.Deployment),
                Labels = new() { [Labels.Workload] = LabelValue(request.Deployment) },
                Annotations = request.AllowUnauthenticated ? new() { [Annotations.AllowUnauthenticated] = "true" } : null,
            },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = request.Deployment },
                Container = container,
                CheckpointName = request.Checkpoint,
                Fallback = request.Fallback,
                MaxAttempts = request.MaxAttempts,
            },
        };
        var created = await restores.CreateAsync(restore, ct);
        var name = $"{created.Metadata.Namespace}/{created.Metadata.Name}";
        if (request.Json) p.Out.WriteLine(JsonSerializer.Serialize(created, CrscJsonContext.Default.Restore));
        else
            p.Out.WriteLine($"Restore {name} created: container {container} of deployment {target} from " +
                            $"{(request.Checkpoint is null ? "the latest completed checkpoint" : "checkpoint " + request.Checkpoint)}, " +
                            $"fallback {request.Fallback}, at most {request.MaxAttempts} attempt(s)");
        if (!request.Wait) return ExitCodes.Ok;

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(request.Timeout);
        var follower = new Follower(p, request.Json);
        follower.Show(created);
        try
        {
            var last = await FollowAsync(restores, created, follower.Show, deadline.Token);
            if (last is null) return CliOutput.Fail(p, $"restore {name} was deleted before it finished");
            var phase = last.Status!.Phase;
            var message = last.Status.Message is { Length: > 0 } msg ? ": " + msg : "";
            if (phase == RestorePhase.Restored)
            {
                if (!request.Json) p.Out.WriteLine($"Restore {name} Restored{message}");
                return ExitCodes.Ok;
            }
            return CliOutput.Fail(p, $"restore {name} {phase}{message}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return CliOutput.Fail(p, $"restore {name} did not finish within {p.Value("--timeout") ?? $"{(int)DefaultTimeout.TotalMinutes}m"} " +
                                     $"(phase {follower.Phase ?? "Pending"}{(follower.Message is { Length: > 0 } m ? ": " + m : "")}); it goes on in the cluster");
        }
        catch (OperationCanceledException)
        {
            return CliOutput.Fail(p, $"restore {name}: interrupted; the Restore goes on in the cluster (kubectl get rst -n {request.Namespace})");
        }
    }

    /// <summary>
    /// Watches the one Restore (by name, from the resourceVersion last seen) until its phase is final. Null when it was
    /// deleted. A watch the server ends is opened again; a 410 reads the object and watches from there; an API server
    /// that goes away is retried until the deadline.
    /// </summary>
    internal static async Task<Restore?> FollowAsync(IKubeResourceClient<Restore> restores, Restore created, Action<Restore> show,
        CancellationToken ct)
    {
        var ns = created.Metadata.Namespace!;
        var name = created.Metadata.Name!;
        var current = created;
        var rv = created.Metadata.ResourceVersion;
        while (!IsFinal(current))
        {
            try
            {
                var options = new WatchOptions(rv, FieldSelector: "metadata.name=" + name, AllowBookmarks: true, TimeoutSeconds: 60);
                await foreach (var ev in restores.WatchAsync(ns, options, ct))
                {
                    if (!string.IsNullOrEmpty(ev.Object.Metadata.ResourceVersion)) rv = ev.Object.Metadata.ResourceVersion;
                    if (ev.Type == WatchEventType.Bookmark || ev.Object.Metadata.Name != name) continue;
                    if (ev.Type == WatchEventType.Deleted) return null;
                    current = ev.Object;
                    show(current);
                    if (IsFinal(current)) return current;
                }
            }
            catch (ResourceExpiredException)
            {
                rv = null;
            }
            catch (KubeUnavailableException)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                rv = null;
            }
            if (rv is null)
            {
                try
                {
                    current = await restores.GetAsync(ns, name, ct);
                }
                catch (NotFoundException)
                {
                    return null;
                }
                rv = current.Metadata.ResourceVersion;
                show(current);
            }
        }
        return current;
    }

    internal static bool IsFinal(Restore r) => r.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;

    /// <summary>Prints a line (or the object as JSON) each time what a person cares about changes.</summary>
    private sealed class Follower(ParsedCommand p, bool json)
    {
        private string? _shown;

        public string? Phase { get; private set; }
        public string? Message { get; private set; }

        public void Show(Restore r)
        {
            var s = r.Status;
            var phase = (s?.Phase ?? RestorePhase.Pending).ToString();
            var key = string.Join('\u0000', phase, s?.Attempts, s?.CheckpointName, s?.PodName, s?.Message);
            if (key == _shown) return;
            _shown = key;
            Phase = phase;
            Message = s?.Message;
            if (json)
            {
                p.Out.WriteLine(JsonSerializer.Serialize(r, CrscJsonContext.Default.Restore));
                return;
            }
            var details = new List<string>();
            if (s?.Attempts is { } a) details.Add($"attempt {a}/{r.Spec.MaxAttempts}");
            if (s?.CheckpointName is { } c) details.Add($"checkpoint {c}");
            if (s?.PodName is { } pod) details.Add($"pod {pod}");
            var line = $"  [{phase}]";
            if (details.Count > 0) line += " " + string.Join(", ", details);
            if (s?.Message is { Length: > 0 } m) line += (details.Count > 0 ? ": " : " ") + m;
            else if (s is null) line += " waiting for the crsc daemon that leads to pick it up";
            p.Out.WriteLine(line);
        }
    }

    /// <summary><c>&lt;deployment&gt;-restore-</c>, shortened so the server's five random characters still fit 253.</summary>
    private static string GenerateName(string deployment)
    {
        const string suffix = "-restore-";
        var head = deployment.Length + suffix.Length + 5 > 253 ? deployment[..(253 - suffix.Length - 5)].TrimEnd('-', '.') : deployment;
        return head + suffix;
    }

    private static string LabelValue(string name) => name.Length <= 63 ? name : name[..63].TrimEnd('-', '.', '_');
}
