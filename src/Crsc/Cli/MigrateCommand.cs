using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Daemon;
using Crsc.Kube;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc migrate NS/POD [--to NODE] [--wait]</c>: creates a <see cref="Restore"/> of mode Migration through the API
/// server after checking what it can (the pod, its container, the node, the placement gate), and with <c>--wait</c>
/// follows it to its end and prints the downtime.
/// </summary>
internal static class MigrateCommand
{
    private const string Sidecar = "crsc-interceptor";

    public static CommandSpec Spec() => new("migrate", "Move a running pod to another node with its memory (checkpoint, replace, restore).")
    {
        Description = "Creates a Restore of mode Migration (crsc.io/v1alpha1) for the pod. The crsc daemon that leads checkpoints the\n" +
                      "pod's container now (nothing is cordoned), and only once the checkpoint completed deletes the pod:\n" +
                      "  - a Deployment's pod is replaced by its ReplicaSet; crsc annotates the replacement crsc.io/restore-from\n" +
                      "    and, with --to, pins it to NODE by a required node affinity on that pod only (never the template).\n" +
                      "    kube-apiserver lets a pod's node affinity change only while the pod is held by a scheduling gate, so\n" +
                      "    --to needs the gate crsc.io/restore-placement in the Deployment's pod template\n" +
                      "    (spec.template.spec.schedulingGates: [{name: crsc.io/restore-placement}]; crsc removes it from every\n" +
                      "    new pod). Without the gate --to is refused before anything is checkpointed; without --to the\n" +
                      "    replacement goes where the scheduler puts it.\n" +
                      "  - a bare pod (no controller) is made again by crsc under the same name and spec on NODE: --to is\n" +
                      "    required for it.\n" +
                      "The replacement's node fetches the checkpoint and restores the container in place (crsc.io/restore-from).\n" +
                      "The state the application changed between the checkpoint and the deletion is not carried over.\n" +
                      "With --wait each phase change is printed on stderr, and at the end the downtime on stdout: from the\n" +
                      "source container's stop to the restored container running, at the API's one-second precision (the\n" +
                      "old process's last request served is approximated by its container's stop). Without --wait the\n" +
                      "Restore's name is printed (kubectl get rst NAME -o yaml shows status.downtime when it ends).\n" +
                      "Exit 0 when migrated (or created, without --wait), 1 when the migration failed or did not finish in\n" +
                      "time, or the pod, container or node does not exist (nothing is created then), 2 for bad usage, 78 when\n" +
                      "no API server is configured or the configuration is invalid.",
        Arguments = [new ArgumentSpec("NS/POD", "namespace and pod")],
        Options =
        [
            new OptionSpec("--to", "NODE", "the node to move the pod to (required for a bare pod; default: where the scheduler puts the replacement)"),
            new OptionSpec("--container", "NAME", "the container to checkpoint (default: the only one besides crsc's sidecar)"),
            new OptionSpec("--wait", null, "follow the migration to its end and print the downtime"),
            new OptionSpec("--timeout", "DURATION", $"with --wait, stop following after this long (default {(int)RestoreCommand.DefaultTimeout.TotalMinutes}m)"),
            .. CliNode.ConfigFlags("--kubeconfig"),
        ],
        Handler = RunAsync,
        Examples =
        [
            "crsc migrate shop/cart-7d9f8b6c5-x2k4q --to node-2 --wait",
            "crsc migrate shop/cart-7d9f8b6c5-x2k4q",
            "crsc migrate lab/solo --to node-3 --container app",
        ],
    };

    private sealed record Request(string Namespace, string Pod, string? Node, string? Container, TimeSpan Timeout, bool Wait);

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        if (Parse(p, out var usage) is not { } request) return CliOutput.Usage(p, usage!);
        var target = $"{request.Namespace}/{request.Pod}";
        return await CliNode.WithApiServerAsync(p, $"migration of {target}", api => MigrateAsync(p, api, request, target, ct));
    }

    private static Request? Parse(ParsedCommand p, out string? usage)
    {
        usage = CliNode.ParseNamespacedName(p.Arguments[0], "pod", out var ns, out var pod);
        if (usage is not null) return null;
        usage = p.Value("--to") is { } n && !TargetNames.IsSubdomain(n)
            ? $"--to '{n}' is not a valid node name (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253)"
            : CliNode.ContainerProblem(p);
        if (usage is not null) return null;
        usage = CliNode.ParseTimeout(p, RestoreCommand.DefaultTimeout, out var timeout);
        if (usage is not null) return null;
        return new Request(ns, pod, p.Value("--to"), p.Value("--container"), timeout, p.Has("--wait"));
    }

    private static async Task<int> MigrateAsync(ParsedCommand p, KubeApi api, Request request, string target, CancellationToken ct)
    {
        // what the API can tell before anything is made: the pod, its container, the node, the gate --to needs
        Pod pod;
        try
        {
            pod = await api.Resource(Resources.Pods).GetAsync(request.Namespace, request.Pod, ct);
        }
        catch (NotFoundException)
        {
            return CliOutput.Fail(p, $"pod {target} not found");
        }
        var containers = pod.Spec.Containers.Select(c => c.Name).Where(n => n != Sidecar).ToList();
        var container = request.Container;
        if (container is null)
        {
            if (containers.Count != 1)
                return CliOutput.Fail(p, $"pod {target} has {(containers.Count == 0 ? "no containers" : "several containers: " + string.Join(", ", containers))}; name one with --container");
            container = containers[0];
        }
        else if (!pod.Spec.Containers.Any(c => c.Name == container))
        {
            return CliOutput.Fail(p, $"pod {target} has no container '{container}'; it has: {string.Join(", ", containers)}");
        }
        if (request.Node is { } node)
        {
            try
            {
                await api.Resource(Resources.Nodes).GetAsync(null, node, ct);
            }
            catch (NotFoundException)
            {
                return CliOutput.Fail(p, $"node {node} not found");
            }
            catch (ForbiddenException)
            {
                // this identity may not read nodes: the daemon checks it before anything is checkpointed
            }
        }
        var owner = pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true);
        if (owner is null && request.Node is null)
            return CliOutput.Fail(p, $"pod {target} is a bare pod (no controller): crsc makes it again itself and must be told where: give --to NODE");
        if (owner is not null && owner.Kind != "ReplicaSet")
            return CliOutput.Fail(p, $"pod {target} is controlled by {owner.Kind} {owner.Name}: crsc migrate moves a Deployment's pod or a bare pod");
        if (owner is not null && request.Node is not null)
        {
            var rs = await api.Resource(Resources.ReplicaSets).GetAsync(request.Namespace, owner.Name, ct);
            var gated = rs.Spec.Template?.Spec.Extra?.GetValueOrDefault("schedulingGates") is { ValueKind: JsonValueKind.Array } gates
                        && gates.EnumerateArray().Any(g => g.TryGetProperty("name", out var n) && n.GetString() == SchedulingGates.RestorePlacement);
            if (!gated)
                return CliOutput.Fail(p, $"--to {request.Node}: the pod template of {owner.Name}'s Deployment has no scheduling gate {SchedulingGates.RestorePlacement}, " +
                                         "which pinning the replacement to a node needs (kube-apiserver lets a pod's node affinity change only while it is gated); " +
                                         $"add spec.template.spec.schedulingGates: [{{name: {SchedulingGates.RestorePlacement}}}] to the Deployment, or migrate without --to");
        }

        var restores = api.Resource(CrscResources.Restores);
        var created = await restores.CreateAsync(new Restore
        {
            Metadata = new ObjectMeta { Namespace = request.Namespace, GenerateName = GenerateName(request.Pod) },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = request.Pod },
                Container = container,
                Mode = RestoreMode.Migration,
                TargetNode = request.Node,
            },
        }, ct);
        var name = $"{created.Metadata.Namespace}/{created.Metadata.Name}";
        p.Out.WriteLine($"Migration {name} created: container {container} of pod {target} from node {pod.Spec.NodeName} to " +
                        (request.Node is { } to ? $"node {to}" : "where the scheduler puts its replacement"));
        if (!request.Wait) return ExitCodes.Ok;

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(request.Timeout);
        string? shown = null;
        void Show(Restore r)
        {
            var line = $"  [{r.Status?.Phase ?? RestorePhase.Pending}] {(r.Status?.Message is { Length: > 0 } m ? m : "waiting for the crsc daemon that leads to pick it up")}";
            if (line == shown) return;
            shown = line;
            p.Error.WriteLine(line);
        }
        Show(created);
        try
        {
            var last = await RestoreCommand.FollowAsync(restores, created, Show, deadline.Token);
            if (last is null) return CliOutput.Fail(p, $"migration {name} was deleted before it finished");
            if (last.Status!.Phase == RestorePhase.Restored)
            {
                p.Out.WriteLine($"Migration {name} Restored: {last.Status.Message}");
                p.Out.WriteLine($"downtime: {last.Status.Downtime}");
                return ExitCodes.Ok;
            }
            return CliOutput.Fail(p, $"migration {name} {last.Status.Phase}: {last.Status.Message}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return CliOutput.Fail(p, $"migration {name} did not finish within {p.Value("--timeout") ?? $"{(int)RestoreCommand.DefaultTimeout.TotalMinutes}m"} ({shown?.Trim()}); it goes on in the cluster");
        }
        catch (OperationCanceledException)
        {
            return CliOutput.Fail(p, $"migration {name}: interrupted; it goes on in the cluster (kubectl get rst -n {request.Namespace})");
        }
    }

    /// <summary><c>&lt;pod&gt;-migrate-</c>, shortened so the server's five random characters still fit 253.</summary>
    private static string GenerateName(string pod)
    {
        const string suffix = "-migrate-";
        var head = pod.Length + suffix.Length + 5 > 253 ? pod[..(253 - suffix.Length - 5)].TrimEnd('-', '.') : pod;
        return head + suffix;
    }
}
