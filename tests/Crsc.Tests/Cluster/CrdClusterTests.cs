using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Kube;
using Crsc.Testing.Kube;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests.Cluster;

/// <summary>
/// The CRDs of packaging/kubernetes/crds served by <see cref="FakeApiServer"/>, and one object of each kind created,
/// given a status and read back through the real client: the JSON crsc writes uses exactly the schema's field
/// names, enum values and required fields, and survives the round trip unchanged.
/// </summary>
public sealed class CrdClusterTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 22, 4, 0, 0, TimeSpan.Zero);

    private static List<Condition> Conditions() =>
        [new Condition { Type = "Ready", Status = ConditionStatus.True, ObservedGeneration = 1, LastTransitionTime = T, Reason = "Done", Message = "ok" }];

    private static async Task RoundTripAsync<TObj>(FakeApiServer server, KubeApi api, ResourceType<TObj> type, TObj obj)
        where TObj : class, IKubernetesObject
    {
        var (_, crd) = ClusterTestKit.Crds().Single(c => c.Resource.Plural == type.Plural);
        Assert.Equal(type.Kind, ClusterTestKit.Scalar((YamlMappingNode)((YamlMappingNode)crd["spec"])["names"], "kind"));
        Assert.Equal(type.Namespaced, ClusterTestKit.Scalar((YamlMappingNode)crd["spec"], "scope") == "Namespaced");
        var client = api.Resource(type);
        var ct = ClusterTestKit.Timeout();
        var sent = JsonSerializer.SerializeToNode(obj, type.Json)!.AsObject();

        var created = await client.CreateAsync(obj, ct);
        Assert.NotNull(created.Metadata.Uid);
        // a create ignores the status, as the real server does with a status subresource; the subresource takes it
        var node = JsonSerializer.SerializeToNode(created, type.Json)!.AsObject();
        node["status"] = sent["status"]!.DeepClone();
        var withStatus = await client.UpdateStatusAsync(node.Deserialize(type.Json)!, ct);
        var read = await client.GetAsync(obj.Metadata.Namespace, obj.Metadata.Name!, ct);
        var back = JsonSerializer.SerializeToNode(read, type.Json)!.AsObject();
        Assert.Equal(withStatus.Metadata.ResourceVersion, read.Metadata.ResourceVersion);

        Assert.True(JsonNode.DeepEquals(sent["spec"], back["spec"]), $"spec changed: {sent["spec"]} → {back["spec"]}");
        Assert.True(JsonNode.DeepEquals(sent["status"], back["status"]), $"status changed: {sent["status"]} → {back["status"]}");

        // the stored object, as the API server holds it, matches the CRD's structural schema
        var stored = server.Get(server.ResourceOf(type), obj.Metadata.Namespace, obj.Metadata.Name!)!;
        var version = ((YamlSequenceNode)((YamlMappingNode)crd["spec"])["versions"]).Cast<YamlMappingNode>()
            .Single(v => ClusterTestKit.Scalar(v, "storage") == "true");
        var schema = (YamlMappingNode)((YamlMappingNode)version["schema"])["openAPIV3Schema"];
        var errors = new List<string>();
        // a kind without a spec (CheckpointNode: status only) has none to check
        if (Props(schema).TryGetValue("spec", out var specSchema)) Check(schema, stored["spec"], "spec", errors, specSchema);
        else Assert.Null(stored["spec"]);
        Check(schema, stored["status"], "status", errors, Props(schema)["status"]);
        Assert.Empty(errors);
    }

    private static Dictionary<string, YamlMappingNode> Props(YamlMappingNode schema)
        => schema.Children.TryGetValue(new YamlScalarNode("properties"), out var p)
            ? ((YamlMappingNode)p).Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => (YamlMappingNode)kv.Value)
            : [];

    private static string? Get(YamlMappingNode node, string key)
        => node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;

    /// <summary>Every field of <paramref name="value"/> is in the schema, with the schema's type, enum and required fields.</summary>
    private static void Check(YamlMappingNode root, JsonNode? value, string path, List<string> errors, YamlMappingNode schema)
    {
        if (value is null) return;
        var type = Get(schema, "type");
        if (schema.Children.TryGetValue(new YamlScalarNode("enum"), out var en)
            && !((YamlSequenceNode)en).Cast<YamlScalarNode>().Any(e => e.Value == value.ToString()))
            errors.Add($"{path}: {value} is not one of the schema's enum values");
        switch (value)
        {
            case JsonObject obj:
                if (type != "object") { errors.Add($"{path}: an object where the schema says {type}"); return; }
                var props = Props(schema);
                if (schema.Children.TryGetValue(new YamlScalarNode("required"), out var req))
                    foreach (var r in ((YamlSequenceNode)req).Cast<YamlScalarNode>())
                        if (!obj.ContainsKey(r.Value!)) errors.Add($"{path}.{r.Value}: required by the schema, not written");
                var open = schema.Children.ContainsKey(new YamlScalarNode("additionalProperties"))
                           || Get(schema, "x-kubernetes-preserve-unknown-fields") == "true";
                foreach (var (name, child) in obj)
                {
                    if (props.TryGetValue(name, out var sub)) Check(root, child, $"{path}.{name}", errors, sub);
                    else if (!open) errors.Add($"{path}.{name}: not in the schema (the API server would prune it)");
                }
                break;
            case JsonArray arr:
                if (type != "array") { errors.Add($"{path}: an array where the schema says {type}"); return; }
                var items = (YamlMappingNode)schema["items"];
                for (var i = 0; i < arr.Count; i++) Check(root, arr[i], $"{path}[{i}]", errors, items);
                break;
            case JsonValue v:
                var kind = v.GetValueKind();
                var ok = type switch
                {
                    "string" => kind == JsonValueKind.String,
                    "integer" => kind == JsonValueKind.Number && v.ToString().All(c => char.IsDigit(c) || c == '-'),
                    "number" => kind == JsonValueKind.Number,
                    "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
                    _ => Get(schema, "x-kubernetes-int-or-string") == "true",
                };
                if (!ok) errors.Add($"{path}: {kind} where the schema says {type}");
                break;
        }
    }

    [Fact]
    public async Task Each_crsc_kind_round_trips_through_the_client_with_the_schemas_field_names()
    {
        await using var server = await FakeApiServer.StartAsync();
        var crds = ClusterTestKit.Crds();
        Assert.Equal(["checkpointnodes", "checkpointschedules", "containercheckpointcontents", "containercheckpoints", "restores"],
            crds.Select(c => c.Resource.Plural));
        Assert.All(crds, c => Assert.True(c.Resource.HasStatusSubresource, $"{c.Resource.Plural} has a status subresource"));
        ClusterTestKit.RegisterCrds(server);
        using var api = ClusterTestKit.Api(server);

        await RoundTripAsync(server, api, CrscResources.CheckpointSchedules, new CheckpointSchedule
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "apps" },
            Spec = new CheckpointScheduleSpec
            {
                Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = "web" },
                Containers = ["app"],
                Interval = "5m",
                Retention = new RetentionPolicy { KeepLast = 3, MaxAge = "24h", MaxBytes = 10_000_000 },
                Suspend = true,
            },
            Status = new CheckpointScheduleStatus
            {
                ObservedGeneration = 1, LastCheckpointTime = T, NextCheckpointTime = T.AddMinutes(5),
                LastCheckpointName = "web-1", Conditions = Conditions(),
            },
        });

        await RoundTripAsync(server, api, CrscResources.ContainerCheckpoints, new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Name = "web-1", Namespace = "apps" },
            Spec = new ContainerCheckpointSpec { PodName = "web-abc", Container = "app", DeletionPolicy = DeletionPolicy.Retain },
            Status = new ContainerCheckpointStatus
            {
                ObservedGeneration = 1, Phase = ContainerCheckpointPhase.Completed, Message = "done", Node = "node-a",
                PodUid = "uid-1", ContentName = "content-1", StartedAt = T, CompletedAt = T.AddSeconds(3), SizeBytes = 1234,
                Digest = "sha256:" + new string('a', 64), CriuLog = "ok", Conditions = Conditions(),
            },
        });

        await RoundTripAsync(server, api, CrscResources.ContainerCheckpointContents, new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = "content-1" },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = "node-a", Path = "/var/lib/crsc/checkpoints/ab/cd", Digest = "sha256:" + new string('b', 64), SizeBytes = 1234,
                Compression = ArchiveCompression.None, ImageReference = "node-a:5000/crsc/web@sha256:" + new string('c', 64),
                Source = new CheckpointSource { Namespace = "apps", Pod = "web-abc", PodUid = "uid-1", Container = "app", Image = "nginx", ImageId = "sha256:d" },
                DeletionPolicy = DeletionPolicy.Retain,
                CheckpointRef = new NamespacedObjectReference { Namespace = "apps", Name = "web-1", Uid = "uid-2" },
            },
            Status = new ContainerCheckpointContentStatus { Conditions = Conditions() },
        });

        await RoundTripAsync(server, api, CrscResources.Restores, new Restore
        {
            Metadata = new ObjectMeta { Name = "web-r", Namespace = "apps" },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = "web-abc" }, Container = "app",
                CheckpointName = "web-1", Fallback = RestoreFallback.ColdStart, MaxAttempts = 2,
            },
            Status = new RestoreStatus
            {
                ObservedGeneration = 1, Phase = RestorePhase.Restored, Attempts = 1, CheckpointName = "web-1", PodName = "web-abc",
                Message = "restored", StartedAt = T, CompletedAt = T.AddSeconds(2), Conditions = Conditions(),
            },
        });

        await RoundTripAsync(server, api, CrscResources.CheckpointNodes, new CheckpointNode
        {
            Metadata = new ObjectMeta { Name = "node-a" },
            Status = new CheckpointNodeStatus
            {
                Runtime = new NodeRuntime { Name = "containerd", Version = "v2.3.4", ApiVersion = "v1" }, RuntimeSummary = "containerd v2.3.4",
                CriuVersion = "4.2.1", Checkpoint = new NodeCapability { State = CapabilityState.Supported, Reason = "ok" },
                Restore = new NodeCapability { State = CapabilityState.DisabledByConfig, Reason = "off by default", Fix = "enable it" },
                Store = new NodeStore { Checkpoints = 1, Bytes = 1234, FreeBytes = 1L << 30, Used = "1.2 KiB" },
                PodCheckpointApi = "served: checkpoint.k8s.io/v1alpha1", AgentVersion = "0.9.0", LastHeartbeatTime = T, Conditions = Conditions(),
            },
        });

        // and the informer side: a list of each kind through the client
        Assert.Single((await api.Resource(CrscResources.Restores).ListAsync(null, new ListOptions(), ClusterTestKit.Timeout())).Items);
        Assert.Single((await api.Resource(CrscResources.ContainerCheckpointContents).ListAsync(null, new ListOptions(), ClusterTestKit.Timeout())).Items);
    }
}
