using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Kubernetes;

namespace Crsc.Kube.Tests;

public sealed class ObjectModelTests
{
    [Fact]
    public void MicroTime_has_six_fractional_digits_and_Time_whole_seconds()
    {
        var t = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.FromHours(2)).AddTicks(1234567);
        var lease = new Lease { Metadata = new() { Name = "l", CreationTimestamp = t }, Spec = new() { RenewTime = t, AcquireTime = t } };
        var json = JsonNode.Parse(JsonSerializer.Serialize(lease, KubeJsonContext.Default.Lease))!;
        Assert.Equal("2026-03-04T03:06:07.123456Z", (string?)json["spec"]!["renewTime"]);
        Assert.Equal("2026-03-04T03:06:07.123456Z", (string?)json["spec"]!["acquireTime"]);
        Assert.Equal("2026-03-04T03:06:07Z", (string?)json["metadata"]!["creationTimestamp"]);

        var ev = new EventsV1Event { EventTime = t, Series = new() { Count = 2, LastObservedTime = t } };
        var evJson = JsonNode.Parse(JsonSerializer.Serialize(ev, KubeJsonContext.Default.EventsV1Event))!;
        Assert.Equal("2026-03-04T03:06:07.123456Z", (string?)evJson["eventTime"]);
        Assert.Equal("2026-03-04T03:06:07.123456Z", (string?)evJson["series"]!["lastObservedTime"]);

        var back = JsonSerializer.Deserialize(json.ToJsonString(), KubeJsonContext.Default.Lease)!;
        Assert.Equal(t.UtcTicks / 10 * 10, back.Spec.RenewTime!.Value.UtcTicks);
    }

    [Fact]
    public void Unknown_fields_survive_a_round_trip()
    {
        const string json = """
        {"apiVersion":"v1","kind":"Pod",
         "metadata":{"name":"p","namespace":"ns","managedFields":[{"manager":"kubectl"}],"selfLink":"/x"},
         "spec":{"nodeName":"n1","dnsPolicy":"ClusterFirst","affinity":{"nodeAffinity":{"a":1}},
                 "containers":[{"name":"c","image":"i","livenessProbe":{"exec":{"command":["true"]}},
                                "ports":[{"containerPort":80,"appProtocol":"http"}]}],
                 "volumes":[{"name":"v","csi":{"driver":"d"}},{"name":"h","hostPath":{"path":"/x","type":"Directory"}}]},
         "status":{"phase":"Running","qosClass":"BestEffort",
                   "containerStatuses":[{"name":"c","ready":true,"restartCount":2,"imageID":"sha",
                       "state":{"terminated":{"exitCode":137,"reason":"OOMKilled","finishedAt":"2026-01-01T00:00:01Z"}},
                       "volumeMounts":[]}]},
         "futureField":{"x":[1,2]}}
        """;
        var pod = JsonSerializer.Deserialize(json, KubeJsonContext.Default.Pod)!;
        Assert.Equal("n1", pod.Spec.NodeName);
        Assert.Equal(80, pod.Spec.Containers[0].Ports![0].Port);
        Assert.Equal("/x", pod.Spec.Volumes![1].HostPath!.Path);
        Assert.Equal(137, pod.Status!.ContainerStatuses![0].State!.Terminated!.ExitCode);
        pod.Spec.Containers[0].Image = "j";

        var written = JsonNode.Parse(JsonSerializer.Serialize(pod, KubeJsonContext.Default.Pod))!;
        var expected = JsonNode.Parse(json)!;
        expected["spec"]!["containers"]![0]!["image"] = "j";
        Assert.True(JsonNode.DeepEquals(expected, written), written.ToJsonString());
    }

    [Fact]
    public void ImagePullSecrets_are_read_and_kept_with_their_unknown_fields_through_a_write()
    {
        const string json = """
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns"},
         "spec":{"containers":[{"name":"c","image":"registry.example.com/team/app:1"}],
                 "imagePullSecrets":[{"name":"regcred"},{"name":"other","futureField":true}],"dnsPolicy":"ClusterFirst"}}
        """;
        var pod = JsonSerializer.Deserialize(json, KubeJsonContext.Default.Pod)!;
        Assert.Equal(["regcred", "other"], pod.Spec.ImagePullSecrets!.Select(s => s.Name));
        Assert.False(pod.Spec.Extra!.ContainsKey("imagePullSecrets"));
        pod.Spec.Containers[0].Image = "10.0.0.1:5055/ns/app@sha256:00"; // a restore's patch

        var written = JsonNode.Parse(JsonSerializer.Serialize(pod, KubeJsonContext.Default.Pod))!;
        var expected = JsonNode.Parse(json)!;
        expected["spec"]!["containers"]![0]!["image"] = "10.0.0.1:5055/ns/app@sha256:00";
        Assert.True(JsonNode.DeepEquals(expected, written), written.ToJsonString());
    }

    [Fact]
    public void Deployment_keeps_unknown_spec_fields_and_secret_data_is_base64()
    {
        const string json = """
        {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
         "spec":{"replicas":2,"revisionHistoryLimit":3,"selector":{"matchLabels":{"app":"a"}},
                 "template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c"}],"schedulerName":"s"}}},
         "status":{"readyReplicas":1,"collisionCount":0}}
        """;
        var d = JsonSerializer.Deserialize(json, KubeJsonContext.Default.Deployment)!;
        var written = JsonNode.Parse(JsonSerializer.Serialize(d, KubeJsonContext.Default.Deployment))!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), written), written.ToJsonString());

        var s = JsonSerializer.Deserialize("""{"metadata":{"name":"s"},"data":{"k":"aGVsbG8="}}""", KubeJsonContext.Default.Secret)!;
        Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(s.Data!["k"]));
    }

    [Fact]
    public void Status_reads_the_api_server_error_shape()
    {
        const string json = """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}""";
        var s = JsonSerializer.Deserialize(json, KubeJsonContext.Default.Status)!;
        Assert.Equal("Failure", s.Outcome);
        Assert.Equal(404, s.Code);
        Assert.Equal("x", s.Details!.Name);
    }

    [Fact]
    public void Resource_types_know_their_api_versions()
    {
        Assert.Equal("v1", Resources.Pods.ApiVersion);
        Assert.Equal("apps/v1", Resources.Deployments.ApiVersion);
        Assert.Equal("events.k8s.io/v1", Resources.Events.ApiVersion);
        Assert.False(Resources.Nodes.Namespaced);
        Assert.False(Resources.Namespaces.Namespaced);
    }
}
