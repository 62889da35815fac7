using System.Text;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.StaticPods;

namespace Crsc.Controllers.Tests.StaticPods;

/// <summary>Golden tests: a pod as the API server returns it in, the exact static-pod manifest out.</summary>
public sealed class StaticPodSanitizerTests
{
    private static readonly StaticCheckpointPaths Paths = new("/etc/kubernetes/checkpoint-secrets", "/etc/kubernetes/checkpoint-configmaps/");

    /// <summary>A DaemonSet pod as <c>kubectl get pod -o json</c> shows it (trimmed of nothing crsc must handle).</summary>
    private const string ApiPod = """
    {
      "apiVersion": "v1",
      "kind": "Pod",
      "metadata": {
        "name": "kube-apiserver-x7k2p",
        "generateName": "kube-apiserver-",
        "namespace": "kube-system",
        "uid": "0d9c2f5e-6c1b-4b8e-9d7a-1f0c2e3d4a5b",
        "resourceVersion": "48213",
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": { "k8s-app": "kube-apiserver", "controller-revision-hash": "7d9f8c6b5", "pod-template-generation": "1" },
        "annotations": {
          "crsc.io/static-checkpoint": "true",
          "checkpointer.alpha.coreos.com/checkpoint": "true",
          "kubectl.kubernetes.io/restartedAt": "2026-01-02T03:00:00Z",
          "prometheus.io/scrape": "true"
        },
        "ownerReferences": [ { "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-apiserver", "uid": "aaaa", "controller": true, "blockOwnerDeletion": true } ],
        "managedFields": [ { "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1" } ]
      },
      "spec": {
        "volumes": [
          { "name": "secrets", "secret": { "secretName": "kube-apiserver", "defaultMode": 420 } },
          { "name": "config", "configMap": { "name": "apiserver-config", "optional": true } },
          { "name": "ssl-certs-host", "hostPath": { "path": "/usr/share/ca-certificates", "type": "" } },
          { "name": "scratch", "emptyDir": { "medium": "Memory" } },
          { "name": "kube-api-access-7xq2m", "projected": { "sources": [
            { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
            { "configMap": { "name": "kube-root-ca.crt", "items": [ { "key": "ca.crt", "path": "ca.crt" } ] } },
            { "downwardAPI": { "items": [ { "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } } ] } }
          ], "defaultMode": 420 } }
        ],
        "initContainers": [
          { "name": "wait", "image": "busybox:1.36", "command": ["true"],
            "volumeMounts": [ { "name": "kube-api-access-7xq2m", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" } ] }
        ],
        "containers": [
          {
            "name": "kube-apiserver",
            "image": "registry.k8s.io/kube-apiserver:v1.34.0",
            "command": ["kube-apiserver", "--secure-port=6443"],
            "env": [ { "name": "POD_IP", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "status.podIP" } } } ],
            "ports": [ { "name": "https", "containerPort": 6443, "hostPort": 6443, "protocol": "TCP" } ],
            "resources": { "requests": { "cpu": "250m" } },
            "livenessProbe": { "httpGet": { "path": "/livez", "port": 6443, "scheme": "HTTPS" }, "initialDelaySeconds": 15 },
            "volumeMounts": [
              { "name": "secrets", "readOnly": true, "mountPath": "/etc/kubernetes/secrets" },
              { "name": "config", "mountPath": "/etc/kubernetes/config" },
              { "name": "ssl-certs-host", "readOnly": true, "mountPath": "/etc/ssl/certs" },
              { "name": "kube-api-access-7xq2m", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" }
            ],
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": { "privileged": false }
          }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "nodeSelector": { "node-role.kubernetes.io/control-plane": "" },
        "serviceAccountName": "kube-apiserver",
        "serviceAccount": "kube-apiserver",
        "automountServiceAccountToken": true,
        "nodeName": "node-a",
        "hostNetwork": true,
        "securityContext": { "runAsNonRoot": false },
        "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [ { "matchFields": [ { "key": "metadata.name", "operator": "In", "values": ["node-a"] } ] } ] } } },
        "schedulerName": "default-scheduler",
        "tolerations": [
          { "operator": "Exists", "effect": "NoSchedule" },
          { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute" }
        ],
        "priorityClassName": "system-cluster-critical",
        "priority": 2000000000,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
      },
      "status": {
        "phase": "Running",
        "hostIP": "10.0.0.5",
        "podIP": "10.0.0.5",
        "startTime": "2026-01-02T03:04:06Z",
        "qosClass": "Burstable"
      }
    }
    """;

    private const string Golden = """
    {
      "apiVersion": "v1",
      "kind": "Pod",
      "metadata": {
        "name": "kube-apiserver-x7k2p",
        "namespace": "kube-system",
        "annotations": {
          "crsc.io/static-checkpoint": "true",
          "checkpointer.alpha.coreos.com/checkpoint": "true",
          "crsc.io/checkpoint-of": "kube-apiserver-x7k2p"
        }
      },
      "spec": {
        "containers": [
          {
            "name": "kube-apiserver",
            "image": "registry.k8s.io/kube-apiserver:v1.34.0",
            "imagePullPolicy": "IfNotPresent",
            "command": [
              "kube-apiserver",
              "--secure-port=6443"
            ],
            "env": [
              {
                "name": "POD_IP",
                "valueFrom": {
                  "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": "status.podIP"
                  }
                }
              }
            ],
            "volumeMounts": [
              {
                "name": "secrets",
                "mountPath": "/etc/kubernetes/secrets",
                "readOnly": true
              },
              {
                "name": "config",
                "mountPath": "/etc/kubernetes/config"
              },
              {
                "name": "ssl-certs-host",
                "mountPath": "/etc/ssl/certs",
                "readOnly": true
              }
            ],
            "ports": [
              {
                "name": "https",
                "containerPort": 6443,
                "protocol": "TCP",
                "hostPort": 6443
              }
            ],
            "resources": {
              "requests": {
                "cpu": "250m"
              }
            },
            "livenessProbe": {
              "httpGet": {
                "path": "/livez",
                "port": 6443,
                "scheme": "HTTPS"
              },
              "initialDelaySeconds": 15
            },
            "terminationMessagePath": "/dev/termination-log",
            "securityContext": {
              "privileged": false
            }
          }
        ],
        "initContainers": [
          {
            "name": "wait",
            "image": "busybox:1.36",
            "command": [
              "true"
            ],
            "volumeMounts": []
          }
        ],
        "volumes": [
          {
            "name": "secrets",
            "hostPath": {
              "path": "/etc/kubernetes/checkpoint-secrets/kube-system/kube-apiserver-x7k2p/kube-apiserver",
              "type": "Directory"
            }
          },
          {
            "name": "config",
            "hostPath": {
              "path": "/etc/kubernetes/checkpoint-configmaps/kube-system/kube-apiserver-x7k2p/apiserver-config",
              "type": "Directory"
            }
          },
          {
            "name": "ssl-certs-host",
            "hostPath": {
              "path": "/usr/share/ca-certificates",
              "type": ""
            }
          },
          {
            "name": "scratch",
            "emptyDir": {
              "medium": "Memory"
            }
          }
        ],
        "restartPolicy": "Always",
        "tolerations": [
          {
            "operator": "Exists",
            "effect": "NoSchedule"
          },
          {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute"
          }
        ],
        "hostNetwork": true,
        "priorityClassName": "system-cluster-critical",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "securityContext": {
          "runAsNonRoot": false
        },
        "enableServiceLinks": true
      }
    }

    """;

    private static Pod Read(string json) => JsonSerializer.Deserialize(json, KubeJsonContext.Default.Pod)!;

    [Fact]
    public void A_realistic_pod_becomes_exactly_the_golden_manifest()
    {
        var parent = Read(ApiPod);
        var spec = StaticPodSanitizer.Sanitize(parent, Paths);
        var text = Encoding.UTF8.GetString(StaticPodManifest.Serialize(spec.Manifest));
        Assert.Equal(Golden.ReplaceLineEndings("\n"), text);
        Assert.Equal(new ObjectKey("kube-system", "kube-apiserver-x7k2p"), spec.Parent);
        Assert.Equal([new StaticDataSource("kube-apiserver", false)], spec.Secrets);
        Assert.Equal([new StaticDataSource("apiserver-config", true)], spec.ConfigMaps);
        // the manifest names its parent; the input is unchanged
        Assert.Equal(spec.Parent, StaticPodManifest.ParentOf(StaticPodManifest.Deserialize(StaticPodManifest.Serialize(spec.Manifest))));
        Assert.Equal(JsonSerializer.Serialize(Read(ApiPod), KubeJsonContext.Default.Pod), JsonSerializer.Serialize(parent, KubeJsonContext.Default.Pod));
    }

    [Fact]
    public void A_secret_mounted_twice_is_saved_once_and_required_if_any_mount_requires_it()
    {
        var parent = Read(ApiPod);
        parent.Spec.Volumes!.Add(new Volume { Name = "again", Secret = new SecretVolumeSource { SecretName = "kube-apiserver", Optional = true } });
        parent.Spec.Volumes!.Add(new Volume { Name = "opt", Secret = new SecretVolumeSource { SecretName = "extra", Optional = true } });
        var spec = StaticPodSanitizer.Sanitize(parent, Paths);
        Assert.Equal([new StaticDataSource("kube-apiserver", false), new StaticDataSource("extra", true)], spec.Secrets);
        Assert.Equal("/etc/kubernetes/checkpoint-secrets/kube-system/kube-apiserver-x7k2p/kube-apiserver",
            spec.Manifest.Spec.Volumes!.Single(v => v.Name == "again").HostPath!.Path);
    }

    [Theory]
    [InlineData("../../etc", "secret name")]
    [InlineData("a/b", "secret name")]
    [InlineData("UPPER", "secret name")]
    [InlineData("", "secret name")]
    public void A_secret_name_that_cannot_be_a_path_is_refused(string name, string kind)
    {
        var parent = Read(ApiPod);
        parent.Spec.Volumes![0].Secret!.SecretName = name;
        var e = Assert.Throws<InvalidStaticPodNameException>(() => StaticPodSanitizer.Sanitize(parent, Paths));
        Assert.Equal(kind, e.Kind);
        Assert.Equal(name, e.Value);
    }

    [Theory]
    [InlineData("token", true)]
    [InlineData(".dockerconfigjson", true)]
    [InlineData("tls.crt", true)]
    [InlineData("..data", false)]
    [InlineData("..", false)]
    [InlineData(".", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    public void Data_keys_follow_the_api_rule(string key, bool valid)
    {
        if (valid) Assert.Equal(key, StaticPodNames.DataKeyName(key));
        else Assert.Throws<InvalidStaticPodNameException>(() => StaticPodNames.DataKeyName(key));
    }

    // .NET's '$' also matches before a final '\n': every name check must refuse a trailing newline
    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void Names_with_a_trailing_newline_are_refused(string end)
    {
        Assert.Throws<InvalidStaticPodNameException>(() => StaticPodNames.Namespace("kube-system" + end));
        Assert.Throws<InvalidStaticPodNameException>(() => StaticPodNames.Object("pod name", "etcd-node1" + end));
        Assert.Throws<InvalidStaticPodNameException>(() => StaticPodNames.DataKeyName("ca.crt" + end));
    }
}
