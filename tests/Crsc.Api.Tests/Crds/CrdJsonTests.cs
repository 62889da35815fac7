using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Tests.Crds;

public sealed class CrdJsonTests
{
    private static JsonObject ToNode<T>(T value, ResourceType<T> resource) where T : class, IKubernetesObject =>
        (JsonObject)JsonSerializer.SerializeToNode(value, resource.Json)!;

    private static T RoundTrip<T>(T value, ResourceType<T> resource) where T : class, IKubernetesObject
    {
        var json = JsonSerializer.Serialize(value, resource.Json);
        var back = JsonSerializer.Deserialize(json, resource.Json)!;
        // Serializing again gives the same text: nothing lost, nothing added.
        Assert.Equal(json, JsonSerializer.Serialize(back, resource.Json));
        return back;
    }

    [Fact]
    public void CheckpointSchedule_round_trips_with_api_names()
    {
        var json = ToNode(Samples.Schedule(), CrscResources.CheckpointSchedules);
        Assert.Equal("crsc.io/v1alpha1", (string?)json["apiVersion"]);
        Assert.Equal("CheckpointSchedule", (string?)json["kind"]);
        Assert.Equal("StatefulSet", (string?)json["spec"]!["target"]!["kind"]);
        Assert.Equal("1h30m", (string?)json["spec"]!["interval"]);
        Assert.False(json["spec"]!.AsObject().ContainsKey("cron")); // null omitted
        Assert.Equal(5, (int)json["spec"]!["retention"]!["keepLast"]!);
        Assert.Equal(10L << 30, (long)json["spec"]!["retention"]!["maxBytes"]!);
        Assert.True((bool)json["spec"]!["suspend"]!);
        Assert.Equal("2025-05-20T11:30:00Z", (string?)json["status"]!["nextCheckpointTime"]);
        Assert.Equal("counter-app-20250520-100000", (string?)json["status"]!["lastCheckpointName"]);

        var back = RoundTrip(Samples.Schedule(), CrscResources.CheckpointSchedules);
        Assert.Equal(TimeSpan.FromMinutes(90), back.Spec.IntervalValue);
        Assert.Equal(TimeSpan.FromHours(72), back.Spec.Retention!.MaxAgeValue);
        Assert.Equal(["app", "worker"], back.Spec.Containers!);
        Assert.Equal(Samples.T0, back.Status!.LastCheckpointTime);
    }

    [Fact]
    public void ContainerCheckpoint_round_trips_with_api_names()
    {
        var json = ToNode(Samples.Checkpoint(), CrscResources.ContainerCheckpoints);
        var spec = json["spec"]!.AsObject();
        Assert.Equal(["podName", "container", "deletionPolicy"], spec.Select(p => p.Key));
        Assert.Equal("Retain", (string?)spec["deletionPolicy"]);
        var status = json["status"]!.AsObject();
        Assert.Equal("Completed", (string?)status["phase"]);
        Assert.Equal(123_456_789L, (long)status["sizeBytes"]!);
        Assert.Equal("2025-05-20T10:00:03Z", (string?)status["completedAt"]);
        Assert.Equal(["observedGeneration", "phase", "message", "node", "podUid", "contentName", "startedAt",
            "completedAt", "sizeBytes", "digest", "criuLog", "conditions"], status.Select(p => p.Key));

        var back = RoundTrip(Samples.Checkpoint(), CrscResources.ContainerCheckpoints);
        Assert.Equal(ContainerCheckpointPhase.Completed, back.Status!.Phase);
        Assert.Equal(DeletionPolicy.Retain, back.Spec.DeletionPolicy);
    }

    [Fact]
    public void ContainerCheckpointContent_round_trips_with_lower_case_enums()
    {
        var json = ToNode(Samples.Content(), CrscResources.ContainerCheckpointContents);
        Assert.False(json["metadata"]!.AsObject().ContainsKey("namespace")); // cluster-scoped
        var spec = json["spec"]!;
        Assert.Equal("zstd", (string?)spec["compression"]);
        Assert.Equal("aes-256-gcm", (string?)spec["encryption"]!["algorithm"]);
        Assert.Equal("node-key-1", (string?)spec["encryption"]!["keyId"]);
        Assert.Equal("sha256:" + new string('c', 64), (string?)spec["source"]!["imageId"]);
        Assert.Equal("shop", (string?)spec["checkpointRef"]!["namespace"]);

        var back = RoundTrip(Samples.Content(), CrscResources.ContainerCheckpointContents);
        Assert.Equal(ArchiveCompression.Zstd, back.Spec.Compression);
        Assert.Equal(EncryptionAlgorithm.Aes256Gcm, back.Spec.Encryption!.Algorithm);
    }

    [Fact]
    public void Restore_round_trips_with_api_names()
    {
        var json = ToNode(Samples.Restore(), CrscResources.Restores);
        Assert.Equal("Deployment", (string?)json["spec"]!["target"]!["kind"]);
        Assert.Equal("Fail", (string?)json["spec"]!["fallback"]);
        Assert.Equal(5, (int)json["spec"]!["maxAttempts"]!);
        Assert.Equal("FellBack", (string?)json["status"]!["phase"]);
        Assert.Equal(5, (int)json["status"]!["attempts"]!);

        var back = RoundTrip(Samples.Restore(), CrscResources.Restores);
        Assert.Equal(RestorePhase.FellBack, back.Status!.Phase);
        Assert.Equal(RestoreFallback.Fail, back.Spec.Fallback);
    }

    [Fact]
    public void Conditions_use_the_metav1_shape()
    {
        var json = ToNode(Samples.Restore(), CrscResources.Restores);
        var c = json["status"]!["conditions"]![0]!.AsObject();
        Assert.Equal(["type", "status", "observedGeneration", "lastTransitionTime", "reason", "message"], c.Select(p => p.Key));
        Assert.Equal("True", (string?)c["status"]);
        Assert.Equal("2025-05-20T10:00:00Z", (string?)c["lastTransitionTime"]);
    }

    [Fact]
    public void New_objects_omit_nulls_and_carry_defaults()
    {
        var json = JsonSerializer.Serialize(new Restore { Metadata = new ObjectMeta { Name = "r", Namespace = "ns" } }, CrscResources.Restores.Json);
        Assert.Equal(
            """{"apiVersion":"crsc.io/v1alpha1","kind":"Restore","metadata":{"name":"r","namespace":"ns"},"spec":{"target":{"kind":"Deployment","name":""},"fallback":"ColdStart","maxAttempts":3}}""",
            json);
        json = JsonSerializer.Serialize(new ContainerCheckpoint(), CrscResources.ContainerCheckpoints.Json);
        Assert.Equal(
            """{"apiVersion":"crsc.io/v1alpha1","kind":"ContainerCheckpoint","metadata":{},"spec":{"podName":"","container":"","deletionPolicy":"Delete"}}""",
            json);
    }

    [Fact]
    public void Reads_what_the_api_server_writes()
    {
        // Fields in a different order, times with offsets and fractions, unknown fields from a newer
        // crsc: all fine.
        const string json = """
            {"kind":"ContainerCheckpoint","apiVersion":"crsc.io/v1alpha1",
             "metadata":{"name":"c","namespace":"n","creationTimestamp":"2025-05-20T12:00:00+02:00","generation":1},
             "spec":{"container":"app","podName":"p","deletionPolicy":"Delete","futureField":{"x":1}},
             "status":{"phase":"Running","startedAt":"2025-05-20T10:00:00.123456Z","node":"n1"}}
            """;
        var c = JsonSerializer.Deserialize(json, CrscResources.ContainerCheckpoints.Json)!;
        Assert.Equal(Samples.T0, c.Metadata.CreationTimestamp);
        Assert.Equal(ContainerCheckpointPhase.Running, c.Status!.Phase);
        Assert.Equal(Samples.T0.AddTicks(1_234_560), c.Status.StartedAt);
        // Written back as metav1.Time: UTC, whole seconds.
        Assert.Contains("\"startedAt\":\"2025-05-20T10:00:00Z\"", JsonSerializer.Serialize(c, CrscResources.ContainerCheckpoints.Json));
    }

    [Fact]
    public void Unknown_enum_values_are_refused()
    {
        const string json = """{"spec":{"podName":"p","container":"c","deletionPolicy":"Shred"}}""";
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize(json, CrscResources.ContainerCheckpoints.Json));
    }

    [Fact]
    public void Lists_deserialize_through_the_resource_types()
    {
        const string json = """
            {"apiVersion":"crsc.io/v1alpha1","kind":"RestoreList","metadata":{"resourceVersion":"7","continue":"abc"},
             "items":[{"metadata":{"name":"a"},"spec":{"target":{"kind":"Pod","name":"p"}}}]}
            """;
        var list = JsonSerializer.Deserialize(json, CrscResources.Restores.ListJson)!;
        Assert.Equal("abc", list.Metadata.Continue);
        var item = Assert.Single(list.Items);
        Assert.Equal(RestoreTargetKind.Pod, item.Spec.Target.Kind);
        Assert.Equal(3, item.Spec.MaxAttempts); // C# default when the server did not send it
    }

    [Fact]
    public void Resource_types_say_where_each_kind_lives()
    {
        Assert.Equal("crsc.io/v1alpha1", CrscResources.Restores.ApiVersion);
        Assert.Equal(("checkpointschedules", true), (CrscResources.CheckpointSchedules.Plural, CrscResources.CheckpointSchedules.Namespaced));
        Assert.Equal(("containercheckpoints", true), (CrscResources.ContainerCheckpoints.Plural, CrscResources.ContainerCheckpoints.Namespaced));
        Assert.Equal(("containercheckpointcontents", false), (CrscResources.ContainerCheckpointContents.Plural, CrscResources.ContainerCheckpointContents.Namespaced));
        Assert.Equal(("restores", true), (CrscResources.Restores.Plural, CrscResources.Restores.Namespaced));
    }
}
