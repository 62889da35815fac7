using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;

namespace Crsc.Testing.Scenarios;

/// <summary>What the migration scenario saw.</summary>
public sealed record MigrateResult(
    int ExitCode,
    string Stdout,
    string Stderr,
    RestorePhase? Phase,
    string? Downtime,
    string? ReplacementPod,
    string? ReplacementNode,
    /// <summary>The replacement was pinned by a required node affinity on the pod (the template left alone).</summary>
    bool PinnedOnPodOnly,
    long CounterBeforeMigrate,
    long FirstCounterAfter,
    bool SameProcess);

public sealed partial class CheckpointRestoreScenario
{
    /// <summary>
    /// Issue 19, "crsc migrate moves a Deployment's pod to a named node with its memory and reports its downtime", on the
    /// real runtime: two nodes with a crsc daemon and a kubelet each, one API server, the sandbox's containerd. The
    /// Deployment's template carries crsc's placement gate. <c>crsc migrate NS/POD --to node-b --wait</c> (the published
    /// binary) makes a Migration Restore; crsc checkpoints the pod on node-a, deletes it, pins the ReplicaSet's
    /// replacement to node-b (this scenario plays the ReplicaSet controller and the scheduler), node-b's agent fetches the
    /// checkpoint and the replacement is restored there; the CLI prints the downtime.
    /// </summary>
    public async Task<MigrateResult> RunMigrateAsync(string targetNode, string targetImagesListen, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;
        var work = options.WorkDirectory;
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var counterFile = Path.Combine(data, "counter");
        await using var rig = await Rig.StartAsync(options, say, ct);
        var api = rig.Api;
        var targetWork = Directory.CreateDirectory(Path.Combine(work, "target")).FullName;
        await using var second = await SecondNodeAsync(rig, targetNode, targetWork, ct);

        // checkpoints only when asked (the migration's own): a long schedule interval
        var replicaSet = SeedDeployment(api, data, DeploymentName, ReplicaSetName);
        bool Gate(JsonObject o)
        {
            o["spec"]!["template"]!["spec"]!["schedulingGates"] = new JsonArray(new JsonObject { ["name"] = SchedulingGates.RestorePlacement });
            return true;
        }
        api.Mutate(api.ResourceOf(Resources.Deployments), Namespace, DeploymentName, Gate);
        api.Mutate(api.ResourceOf(Resources.ReplicaSets), Namespace, ReplicaSetName, Gate);
        SeedPod(api, PodName, data, replicaSet);
        say($"nodes {options.NodeName} and {targetNode}; Deployment {Namespace}/{DeploymentName} (template gated by {SchedulingGates.RestorePlacement}), its pod {PodName} on {options.NodeName}");

        Process? source = null, target = null;
        var sourceLog = Path.Combine(work, "daemon.log");
        var targetLog = Path.Combine(targetWork, "daemon.log");
        try
        {
            await WaitAsync(() => Counter(counterFile) >= 3, "the counter is running", TimeSpan.FromSeconds(60), ct);
            var incarnation = Incarnation(counterFile);
            (source, target) = StartTwoDaemons(rig, work, sourceLog, targetWork, targetLog, targetNode, targetImagesListen);
            say($"crsc daemons started: {options.NodeName} pid {source.Id}, {targetNode} pid {target.Id}");
            // the node agent knows the pod (its CheckpointNode says what its runtime can do) before the migration starts
            await WaitAsync(() =>
            {
                CheckDaemon(source, sourceLog);
                CheckDaemon(target, targetLog);
                return new[] { options.NodeName, targetNode }.All(n => api.Get(CrscResources.CheckpointNodes, null, n) is not null);
            }, "both nodes' agents have reported (their CheckpointNodes)", TimeSpan.FromSeconds(60), ct);
            var before = Counter(counterFile);

            var cli = new ProcessStartInfo(options.Binary, ["migrate", $"{Namespace}/{PodName}", "--to", targetNode, "--wait", "--kubeconfig", rig.Kubeconfig])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            cli.Environment.Clear();
            cli.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
            cli.Environment["CRSC_CONFIG"] = Path.Combine(work, "config.yaml");
            using var migrate = Process.Start(cli) ?? throw new InvalidOperationException("could not start crsc migrate");
            var stdout = migrate.StandardOutput.ReadToEndAsync(ct);
            var stderr = migrate.StandardError.ReadToEndAsync(ct);
            say($"$ crsc migrate {Namespace}/{PodName} --to {targetNode} --wait (counter {before})");

            // the ReplicaSet controller and the scheduler, as far as this takes them
            const string replacementName = "counter-5d8f7b9c4-m1gr8";
            var replacementMade = false;
            var templateUntouched = true;
            while (!migrate.HasExited)
            {
                CheckDaemon(source, sourceLog);
                CheckDaemon(target, targetLog);
                if (!replacementMade && api.Get(Resources.Pods, Namespace, PodName) is null
                    && rig.Kubelet.ContainerIdOf(Namespace, PodName, ContainerName) is null)
                {
                    SeedPod(api, replacementName, data, replicaSet, p => p.Spec.NodeName = null);
                    api.Mutate(api.ResourceOf(Resources.Pods), Namespace, replacementName, o =>
                    {
                        o["spec"]!["schedulingGates"] = new JsonArray(new JsonObject { ["name"] = SchedulingGates.RestorePlacement });
                        return true;
                    });
                    replacementMade = true;
                    say($"ReplicaSet controller: the old pod is gone; replacement {replacementName} made (gated, no node)");
                }
                if (replacementMade && api.Get(Resources.Pods, Namespace, replacementName) is { } waiting
                    && string.IsNullOrEmpty(waiting.Spec.NodeName) && !Gated(waiting))
                {
                    var pinnedTo = RequiredNodeOf(waiting);
                    var node = pinnedTo ?? options.NodeName;
                    api.Mutate(api.ResourceOf(Resources.Pods), Namespace, replacementName, o =>
                    {
                        o["spec"]!["nodeName"] = node;
                        return true;
                    });
                    say($"scheduler: {replacementName} bound to {node}{(pinnedTo is null ? " (it was not pinned)" : " (its required node affinity)")}");
                }
                var template = api.Get(Resources.ReplicaSets, Namespace, ReplicaSetName)?.Spec.Template?.Spec;
                if (template?.Affinity is not null) templateUntouched = false;
                await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
            }
            await migrate.WaitForExitAsync(ct);
            var (output, errors) = (await stdout, await stderr);
            say($"crsc migrate exited {migrate.ExitCode}; stdout:\n{output.TrimEnd()}\nstderr:\n{errors.TrimEnd()}");

            var migration = api.All(api.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!)
                .FirstOrDefault(r => r.Spec.Mode == RestoreMode.Migration);
            var replacement = api.Get(Resources.Pods, Namespace, replacementName);
            long first = -1;
            if (migration?.Status?.Phase == RestorePhase.Restored)
                await WaitAsync(() =>
                {
                    var value = Counter(counterFile);
                    if (value >= 0 && Incarnation(counterFile) == incarnation) first = value;
                    return first >= 0;
                }, "the replacement's counter continues the migrated process", TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
            say($"migration {migration?.Metadata.Name}: {migration?.Status?.Phase}, downtime {migration?.Status?.Downtime}; counter {before} before, {first} after on {replacement?.Spec.NodeName}");
            return new MigrateResult(migrate.ExitCode, output, errors, migration?.Status?.Phase, migration?.Status?.Downtime,
                replacement?.Metadata.Name, replacement?.Spec.NodeName, replacement is not null && RequiredNodeOf(replacement) == targetNode && templateUntouched,
                before, first, first >= 0 && Incarnation(counterFile) == incarnation);
        }
        catch
        {
            var kept = KeepLogs("migrate", (sourceLog, "source.log"), (targetLog, "target.log"));
            say($"both daemons' logs are kept in {kept}");
            throw;
        }
        finally
        {
            DaemonProcess.Stop(target);
            DaemonProcess.Stop(source);
        }
    }

    private static bool Gated(Pod pod) =>
        pod.Spec.Extra?.GetValueOrDefault("schedulingGates") is { ValueKind: JsonValueKind.Array } gates && gates.GetArrayLength() > 0;

    /// <summary>The one node a pod's required node affinity allows by <c>metadata.name</c>, or null.</summary>
    private static string? RequiredNodeOf(Pod pod)
    {
        if (pod.Spec.Affinity is not { } affinity) return null;
        var terms = JsonNode.Parse(affinity.GetRawText())?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"] as JsonArray;
        return terms?.SelectMany(t => (t?["matchFields"] as JsonArray ?? []).Concat(t?["matchExpressions"] as JsonArray ?? []))
            .Where(e => (string?)e?["operator"] == "In" && (string?)e?["key"] is "metadata.name" or "kubernetes.io/hostname")
            .Select(e => (e!["values"] as JsonArray)?.Count == 1 ? (string?)e["values"]![0] : null)
            .FirstOrDefault(v => v is not null);
    }
}
