using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.StaticPods;

/// <summary>Where a checkpoint's Secrets and ConfigMaps live on the node (absolute directories).</summary>
public sealed record StaticCheckpointPaths(string SecretsDir, string ConfigMapsDir)
{
    public string SecretDir(ObjectKey parent, string name) => $"{SecretsDir.TrimEnd('/')}/{parent.Namespace}/{parent.Name}/{name}";
    public string ConfigMapDir(ObjectKey parent, string name) => $"{ConfigMapsDir.TrimEnd('/')}/{parent.Namespace}/{parent.Name}/{name}";
}

/// <summary>A Secret or ConfigMap a checkpoint needs, by name (in the parent's namespace).</summary>
public sealed record StaticDataSource(string Name, bool Optional);

/// <summary>What a parent's checkpoint consists of: the sanitized manifest and the objects its volumes read.</summary>
public sealed record StaticCheckpointSpec(
    ObjectKey Parent,
    Pod Manifest,
    IReadOnlyList<StaticDataSource> Secrets,
    IReadOnlyList<StaticDataSource> ConfigMaps);

/// <summary>
/// Turns a parent pod into the static pod the kubelet can run without an API server (bootkube's pod-checkpointer
/// rules): metadata reduced to name, namespace and the checkpoint annotations plus <c>crsc.io/checkpoint-of</c>; no
/// labels; no status; no service account (nor its token volume and mounts); no scheduling constraints (the
/// checkpoint is a static pod of this node already: <c>nodeName</c>, <c>nodeSelector</c> and <c>affinity</c> go,
/// pods with affinity are checkpointed like any other, as bootkube does; tolerations stay); fields the API's
/// admission sets (<c>priority</c>, <c>preemptionPolicy</c>, <c>overhead</c>) go so the mirror pod is admitted; Secret
/// and ConfigMap volumes become hostPath volumes of the node's copies. Everything else, including fields crsc does
/// not model, is copied as it is. Pure: the input pod is not changed.
/// </summary>
/// <remarks>
/// Not rewritten (they need the API server and fail in the checkpoint like in any static pod): environment
/// variables from Secrets/ConfigMaps, projected volumes other than the service-account token volume, and
/// <c>items</c> of Secret/ConfigMap volumes (every key is saved and mounted under its own name).
/// </remarks>
public static class StaticPodSanitizer
{
    private static readonly string[] DroppedSpecFields =
    [
        "serviceAccount", "automountServiceAccountToken", "nodeName", "schedulerName", "schedulingGates",
        "priority", "preemptionPolicy", "overhead", "ephemeralContainers",
    ];

    /// <exception cref="InvalidStaticPodNameException">a name in the pod cannot be used in a path</exception>
    public static StaticCheckpointSpec Sanitize(Pod parent, StaticCheckpointPaths paths)
    {
        var key = StaticPodNames.Parent(parent);
        var copy = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(parent, KubeJsonContext.Default.Pod),
            KubeJsonContext.Default.Pod)!;

        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kept in new[] { Annotations.StaticCheckpoint, Annotations.CoreOsCheckpoint })
            if (parent.Metadata.Annotations?.GetValueOrDefault(kept) is { } value) annotations[kept] = value;
        annotations[Annotations.CheckpointOf] = key.Name;

        var spec = copy.Spec;
        spec.NodeName = null;
        spec.ServiceAccountName = null;
        spec.NodeSelector = null;
        spec.Affinity = null;
        if (spec.Extra is { } extra)
        {
            foreach (var field in DroppedSpecFields) extra.Remove(field);
            if (extra.Count == 0) spec.Extra = null;
        }

        var secrets = new List<StaticDataSource>();
        var configMaps = new List<StaticDataSource>();
        var removedVolumes = new HashSet<string>(StringComparer.Ordinal);
        var volumes = new List<Volume>();
        foreach (var volume in spec.Volumes ?? [])
        {
            if (IsServiceAccountTokenVolume(volume))
            {
                removedVolumes.Add(volume.Name);
                continue;
            }
            if (volume.Secret is { } secret)
            {
                var name = StaticPodNames.Object("secret name", secret.SecretName);
                Add(secrets, name, secret.Optional == true);
                volumes.Add(HostPath(volume.Name, paths.SecretDir(key, name)));
                continue;
            }
            if (volume.ConfigMap is { } configMap)
            {
                var name = StaticPodNames.Object("configmap name", configMap.Name);
                Add(configMaps, name, configMap.Optional == true);
                volumes.Add(HostPath(volume.Name, paths.ConfigMapDir(key, name)));
                continue;
            }
            volumes.Add(volume);
        }
        spec.Volumes = spec.Volumes is null ? null : volumes;
        foreach (var container in spec.Containers.Concat(spec.InitContainers ?? []))
        {
            if (container.VolumeMounts is null || removedVolumes.Count == 0) continue;
            container.VolumeMounts.RemoveAll(m => removedVolumes.Contains(m.Name));
        }

        var manifest = new Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new ObjectMeta { Name = key.Name, Namespace = key.Namespace, Annotations = annotations },
            Spec = spec,
        };
        return new StaticCheckpointSpec(key, manifest, secrets, configMaps);
    }

    private static void Add(List<StaticDataSource> sources, string name, bool optional)
    {
        var existing = sources.FindIndex(s => s.Name == name);
        if (existing < 0) sources.Add(new StaticDataSource(name, optional));
        // mounted twice: required if any mount requires it
        else if (!optional) sources[existing] = sources[existing] with { Optional = false };
    }

    private static Volume HostPath(string name, string path) =>
        new() { Name = name, HostPath = new HostPathVolumeSource { Path = path, Type = "Directory" } };

    /// <summary>The projected volume with a service-account token (the API's <c>kube-api-access-*</c>).</summary>
    private static bool IsServiceAccountTokenVolume(Volume volume)
    {
        if (volume.Extra?.TryGetValue("projected", out var projected) != true || projected.ValueKind != JsonValueKind.Object) return false;
        if (!projected.TryGetProperty("sources", out var sources) || sources.ValueKind != JsonValueKind.Array) return false;
        foreach (var source in sources.EnumerateArray())
            if (source.ValueKind == JsonValueKind.Object && source.TryGetProperty("serviceAccountToken", out _)) return true;
        return false;
    }
}

/// <summary>The on-disk form of a checkpoint manifest: indented JSON (the kubelet reads JSON and YAML alike).</summary>
public static class StaticPodManifest
{
    public const string Extension = ".json";

    public static byte[] Serialize(Pod pod)
    {
        using var doc = JsonDocument.Parse(JsonSerializer.SerializeToUtf8Bytes(pod, KubeJsonContext.Default.Pod));
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            doc.WriteTo(writer);
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <exception cref="JsonException">not a pod manifest</exception>
    public static Pod Deserialize(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, KubeJsonContext.Default.Pod) ?? throw new JsonException("the manifest is null");

    /// <summary>
    /// The parent a checkpoint crsc wrote names (<c>crsc.io/checkpoint-of</c>), or null for any other manifest: crsc
    /// never treats a manifest it did not write as its own (bootkube's checkpoints included).
    /// </summary>
    public static ObjectKey? ParentOf(Pod manifest)
    {
        var parent = manifest.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointOf);
        if (parent is null || manifest.Metadata.Namespace is null) return null;
        return new ObjectKey(manifest.Metadata.Namespace, parent);
    }
}
