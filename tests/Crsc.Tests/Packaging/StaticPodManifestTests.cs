using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Crsc.Configuration;
using Crsc.Manifests;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests.Packaging;

/// <summary>The repository's files, found from this source file's path or the test's directories.</summary>
internal static class Repository
{
    public static string Root { get; } = Find();

    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Find([CallerFilePath] string thisFile = "")
    {
        var candidates = new List<string?> { Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? ".", "..", "..", "..")) };
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent) candidates.Add(d.FullName);
        return candidates.FirstOrDefault(c => c is not null && System.IO.File.Exists(Path.Combine(c, "nfpm.yaml")))
            ?? throw new InvalidOperationException("repository root (with nfpm.yaml) not found");
    }
}

/// <summary>
/// packaging/kubernetes/static-pod.yaml against the parts of the Pod schema (core/v1) it uses: every
/// key known and of the right type, names valid, mounts naming existing volumes, and what crsc
/// needs of it (host paths, node name, priority, probes on the metrics address).
/// </summary>
public sealed partial class StaticPodManifestTests
{
    private static readonly YamlMappingNode Pod = Load();

    private static YamlMappingNode Load()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(System.IO.File.ReadAllText(Repository.File("packaging", "kubernetes", "static-pod.yaml"))));
        Assert.Single(stream.Documents);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    // --- a small schema of the core/v1 fields a static pod may use (from the Kubernetes API reference) ---

    private abstract record Field;
    private sealed record Str : Field;
    private sealed record Int : Field;
    private sealed record Bool : Field;
    private sealed record IntOrStr : Field;
    private sealed record Quantity : Field;
    private sealed record Obj(Func<Dictionary<string, Field>> Fields) : Field;
    private sealed record Map : Field; // string → string
    private sealed record List(Field Item) : Field;

    private static readonly Field S = new Str(), I = new Int(), B = new Bool(), IS = new IntOrStr(), Q = new Quantity(), M = new Map();

    private static Dictionary<string, Field> PodFields() => new()
    {
        ["apiVersion"] = S, ["kind"] = S,
        ["metadata"] = new Obj(() => new() { ["name"] = S, ["namespace"] = S, ["labels"] = M, ["annotations"] = M }),
        ["spec"] = new Obj(PodSpec),
    };

    private static Dictionary<string, Field> PodSpec() => new()
    {
        ["hostNetwork"] = B, ["hostPID"] = B, ["hostIPC"] = B, ["priorityClassName"] = S, ["priority"] = I, ["dnsPolicy"] = S,
        ["terminationGracePeriodSeconds"] = I, ["restartPolicy"] = S, ["nodeName"] = S, ["nodeSelector"] = M,
        ["tolerations"] = new List(new Obj(() => new() { ["key"] = S, ["operator"] = S, ["value"] = S, ["effect"] = S, ["tolerationSeconds"] = I })),
        ["containers"] = new List(new Obj(Container)),
        ["initContainers"] = new List(new Obj(Container)),
        ["volumes"] = new List(new Obj(() => new()
        {
            ["name"] = S,
            ["hostPath"] = new Obj(() => new() { ["path"] = S, ["type"] = S }),
            ["emptyDir"] = new Obj(() => new() { ["medium"] = S, ["sizeLimit"] = Q }),
        })),
        ["securityContext"] = new Obj(() => new() { ["runAsUser"] = I, ["runAsGroup"] = I, ["runAsNonRoot"] = B, ["fsGroup"] = I }),
    };

    private static Dictionary<string, Field> Probe() => new()
    {
        ["httpGet"] = new Obj(() => new() { ["host"] = S, ["port"] = IS, ["path"] = S, ["scheme"] = S }),
        ["exec"] = new Obj(() => new() { ["command"] = new List(S) }),
        ["initialDelaySeconds"] = I, ["periodSeconds"] = I, ["timeoutSeconds"] = I, ["failureThreshold"] = I, ["successThreshold"] = I,
    };

    private static Dictionary<string, Field> Container() => new()
    {
        ["name"] = S, ["image"] = S, ["imagePullPolicy"] = S, ["command"] = new List(S), ["args"] = new List(S), ["workingDir"] = S,
        ["env"] = new List(new Obj(() => new()
        {
            ["name"] = S, ["value"] = S,
            ["valueFrom"] = new Obj(() => new() { ["fieldRef"] = new Obj(() => new() { ["fieldPath"] = S, ["apiVersion"] = S }) }),
        })),
        ["securityContext"] = new Obj(() => new()
        {
            ["privileged"] = B, ["runAsUser"] = I, ["runAsGroup"] = I, ["readOnlyRootFilesystem"] = B, ["allowPrivilegeEscalation"] = B,
            ["capabilities"] = new Obj(() => new() { ["add"] = new List(S), ["drop"] = new List(S) }),
        }),
        ["resources"] = new Obj(() => new() { ["requests"] = new Obj(() => new() { ["cpu"] = Q, ["memory"] = Q }), ["limits"] = new Obj(() => new() { ["cpu"] = Q, ["memory"] = Q }) }),
        ["livenessProbe"] = new Obj(Probe), ["readinessProbe"] = new Obj(Probe), ["startupProbe"] = new Obj(Probe),
        ["volumeMounts"] = new List(new Obj(() => new() { ["name"] = S, ["mountPath"] = S, ["readOnly"] = B, ["subPath"] = S, ["mountPropagation"] = S })),
    };

    private static void Validate(YamlNode node, Field field, string path, List<string> errors)
    {
        switch (field)
        {
            case Obj o when node is YamlMappingNode map:
                var fields = o.Fields();
                foreach (var (k, v) in map.Children)
                {
                    var name = ((YamlScalarNode)k).Value!;
                    if (!fields.TryGetValue(name, out var f)) errors.Add($"{path}.{name}: unknown field");
                    else Validate(v, f, $"{path}.{name}", errors);
                }
                break;
            case Map when node is YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                    if (v is not YamlScalarNode s || ReadAsNonString(s))
                        errors.Add($"{path}.{((YamlScalarNode)k).Value}: must be a string (quote it)");
                break;
            case List l when node is YamlSequenceNode seq:
                var i = 0;
                foreach (var item in seq.Children) Validate(item, l.Item, $"{path}[{i++}]", errors);
                break;
            case Str when node is YamlScalarNode s:
                if (ReadAsNonString(s))
                    errors.Add($"{path}: must be a string, YAML reads '{s.Value}' as another type (quote it)");
                break;
            case Int when node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s:
                if (!Regex.IsMatch(s.Value ?? "", "^[0-9]+$")) errors.Add($"{path}: must be an integer, is '{s.Value}'");
                break;
            case Bool when node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s:
                if (s.Value is not ("true" or "false")) errors.Add($"{path}: must be true or false, is '{s.Value}'");
                break;
            case IntOrStr when node is YamlScalarNode:
                break;
            case Quantity when node is YamlScalarNode s:
                if (!Regex.IsMatch(s.Value ?? "", @"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")) errors.Add($"{path}: '{s.Value}' is not a quantity");
                break;
            default:
                errors.Add($"{path}: must be {field.GetType().Name.ToLowerInvariant()}, is {node.NodeType}");
                break;
        }
    }

    /// <summary>A plain scalar YAML (and so the API server) reads as a bool, null or number, not a string.</summary>
    private static bool ReadAsNonString(YamlScalarNode s) =>
        s.Style == YamlDotNet.Core.ScalarStyle.Plain && (s.Value is "true" or "false" or "null" or "~" || Regex.IsMatch(s.Value ?? "", @"^-?[0-9]+(\.[0-9]+)?$"));

    [Fact]
    public void Every_field_is_a_known_pod_field_of_the_right_type()
    {
        var errors = new List<string>();
        Validate(Pod, new Obj(PodFields), "pod", errors);
        Assert.Empty(errors);
    }

    [Fact]
    public void The_schema_check_catches_unknown_fields_and_wrong_types()
    {
        // the validator itself must be able to fail
        var stream = new YamlStream();
        stream.Load(new StringReader("apiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: yes-please\n  containers:\n    - name: a\n      imagee: x\n      resources:\n        limits:\n          memory: lots\n"));
        var errors = new List<string>();
        Validate(stream.Documents[0].RootNode, new Obj(PodFields), "pod", errors);
        Assert.Equal(["pod.spec.hostNetwork: must be true or false, is 'yes-please'", "pod.spec.containers[0].imagee: unknown field",
                      "pod.spec.containers[0].resources.limits.memory: 'lots' is not a quantity"], errors);
    }

    private static string Scalar(YamlNode node, params string[] path)
    {
        foreach (var p in path) node = ((YamlMappingNode)node)[p];
        return ((YamlScalarNode)node).Value!;
    }

    private static YamlMappingNode Spec => (YamlMappingNode)Pod["spec"];
    private static YamlMappingNode Crsc => (YamlMappingNode)((YamlSequenceNode)Spec["containers"]).Children.Single();

    [Fact]
    public void It_is_a_v1_pod_in_the_crsc_namespace_with_valid_names()
    {
        Assert.Equal("v1", Scalar(Pod, "apiVersion"));
        Assert.Equal("Pod", Scalar(Pod, "kind"));
        Assert.Equal("crsc", Scalar(Pod, "metadata", "name"));
        Assert.Equal(new CrscOptions().Namespace, Scalar(Pod, "metadata", "namespace"));
        // a static pod survives reboots by itself; self-checkpointing is for crsc run as a DaemonSet
        Assert.False(((YamlMappingNode)Pod["metadata"]).Children.ContainsKey("annotations"));
        var names = ((YamlSequenceNode)Spec["volumes"]).Children.Select(v => Scalar(v, "name"))
            .Append(Scalar(Crsc, "name")).Append(Scalar(Pod, "metadata", "name"));
        Assert.All(names, n => Assert.Matches("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", n));
    }

    [Fact]
    public void Runs_on_the_host_network_as_node_critical_with_the_node_name_from_the_downward_api()
    {
        Assert.Equal("true", Scalar(Spec, "hostNetwork"));
        Assert.Equal("system-node-critical", Scalar(Spec, "priorityClassName"));
        var env = ((YamlSequenceNode)Crsc["env"]).Children.Cast<YamlMappingNode>().ToList();
        var nodeName = env.Single(e => Scalar(e, "name") == "NODE_NAME");
        Assert.Equal("spec.nodeName", Scalar(nodeName, "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal(["/usr/bin/crsc", "daemon"], ((YamlSequenceNode)Crsc["command"]).Children.Select(c => ((YamlScalarNode)c).Value));
    }

    [Fact]
    public void Every_environment_variable_is_a_crsc_configuration_variable_with_a_valid_value()
    {
        var env = ((YamlSequenceNode)Crsc["env"]).Children.Cast<YamlMappingNode>()
            .Where(e => e.Children.ContainsKey("value")).ToDictionary(e => Scalar(e, "name"), e => Scalar(e, "value"));
        var known = ConfigKeys.All.SelectMany(k => k.EnvironmentVariables).ToHashSet();
        Assert.All(env.Keys, k => Assert.Contains(k, known));
        // the values are valid for crsc (the kubeconfig file itself is on the node, not here)
        var result = ConfigLoader.Load(null, env.Where(e => e.Key != "CRSC_KUBECONFIG").ToDictionary(), new Dictionary<string, string>(), "/nonexistent/config.yaml");
        Assert.True(result.IsValid, string.Join("; ", result.Errors));
    }

    [Fact]
    public void Mounts_name_existing_host_path_volumes_and_cover_what_crsc_uses()
    {
        var volumes = ((YamlSequenceNode)Spec["volumes"]).Children.Cast<YamlMappingNode>()
            .ToDictionary(v => Scalar(v, "name"), v => Scalar(v, "hostPath", "path"));
        var mounts = ((YamlSequenceNode)Crsc["volumeMounts"]).Children.Cast<YamlMappingNode>()
            .ToDictionary(m => Scalar(m, "mountPath"), m => Scalar(m, "name"));
        Assert.All(mounts.Values, name => Assert.True(volumes.ContainsKey(name), $"volumeMount names volume '{name}', which does not exist"));
        Assert.Equal(volumes.Count, mounts.Values.Distinct().Count());
        Assert.All(volumes.Values, p => Assert.StartsWith("/", p));
        Assert.All(((YamlSequenceNode)Spec["volumes"]).Children, v => Assert.Contains(Scalar(v, "hostPath", "type"),
            new[] { "Directory", "DirectoryOrCreate", "Socket", "File", "FileOrCreate", "" }));
        // each mount shows the host path at the same place: paths in crsc's configuration mean the same inside
        Assert.All(mounts, m => Assert.Equal(volumes[m.Value], m.Key));
        var o = new CrscOptions();
        string[] needed = ["/var/run/crio", "/run/containerd", "/var/lib/crsc", "/run/crsc", "/etc/kubernetes", "/var/lib/kubelet/checkpoints", "/etc/crsc"];
        Assert.All(needed, p => Assert.True(mounts.ContainsKey(p), $"no mount of {p}"));
        foreach (var path in new[] { o.CheckpointDir, o.StagingDir, o.StateDir, o.ManifestsDir, o.InactiveManifestsDir, o.Socket })
            Assert.True(mounts.Keys.Any(m => path.StartsWith(m + "/", StringComparison.Ordinal)), $"{path} (a crsc default) is not under a mount");
    }

    [Fact]
    public void Probes_hit_the_metrics_address_the_pod_configures()
    {
        var address = ((YamlSequenceNode)Crsc["env"]).Children.Cast<YamlMappingNode>().Single(e => Scalar(e, "name") == "CRSC_METRICS_ADDRESS");
        var hostPort = Scalar(address, "value").Split(':');
        foreach (var (probe, path) in new[] { ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz") })
        {
            Assert.Equal(hostPort[0], Scalar(Crsc, probe, "httpGet", "host"));
            Assert.Equal(hostPort[1], Scalar(Crsc, probe, "httpGet", "port"));
            Assert.Equal(path, Scalar(Crsc, probe, "httpGet", "path"));
        }
    }

    [Fact]
    public void The_image_is_this_version_of_crsc()
    {
        var image = Scalar(Crsc, "image");
        Assert.Matches(@"^[a-z0-9.\-]+(:[0-9]+)?/[a-z0-9./\-]+:[A-Za-z0-9_.\-]+$", image);
        Assert.EndsWith(":" + BuildInfo.Version, image);
        Assert.Equal("true", Scalar(Crsc, "securityContext", "privileged"));
        Assert.True(((YamlMappingNode)Crsc["resources"]).Children.ContainsKey("requests"));
    }

    [Fact]
    public void Crsc_manifests_static_pod_prints_this_file()
    {
        Assert.Contains("static-pod", EmbeddedManifests.Kinds);
        Assert.True(EmbeddedManifests.TryGet("static-pod", out var yaml));
        Assert.Equal(System.IO.File.ReadAllText(Repository.File("packaging", "kubernetes", "static-pod.yaml")), yaml);
        // not in `all`, which is for `kubectl apply` (it would make it a plain Pod)
        Assert.True(EmbeddedManifests.TryGet("all", out var all));
        Assert.DoesNotContain(yaml, all);
    }
}
