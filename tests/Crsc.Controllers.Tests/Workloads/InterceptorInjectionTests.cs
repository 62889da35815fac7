using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Workloads;

/// <summary>The Deployment reconciler's one template edit: the interceptor sidecar, made, kept, reverted and refused.</summary>
public sealed class InterceptorInjectionTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string Image = "registry.local/crsc:9.9.9";
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Deployment> _deploymentsApi;
    private readonly FakeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly DeploymentReconciler _reconciler;

    public InterceptorInjectionTests()
    {
        _kube = new FakeKube(_time);
        _deploymentsApi = _kube.For(Resources.Deployments);
        _schedulesApi = _kube.For(CrscResources.CheckpointSchedules);
        _deployments = new Informer<Deployment>(_deploymentsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _schedules = new Informer<CheckpointSchedule>(_schedulesApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _reconciler = new DeploymentReconciler(_kube, _deployments, _schedules, _events, _time, NullLogger.Instance,
            new DeploymentReconcilerOptions { Interceptor = new InterceptorSidecarOptions { Image = Image } });
        _running.Add(_deployments.RunAsync(_stop.Token));
        _running.Add(_schedules.RunAsync(_stop.Token));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    private async Task<ReconcileResult> ReconcileAsync(string name = "web")
    {
        await Eventually.TrueAsync(() =>
            Keys(_deployments.List()).SequenceEqual(Keys(_deploymentsApi.AllStored())), "cache shows what is stored");
        return await _reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
    }

    private static IEnumerable<string> Keys(IEnumerable<IKubernetesObject> objects) =>
        objects.Select(o => $"{o.Metadata.Name}@{o.Metadata.ResourceVersion}").Order(StringComparer.Ordinal);

    /// <summary>A Deployment whose app container serves http on 8080 and metrics on 9090, with PORT=8080 and a config volume.</summary>
    private static Deployment NewDeployment(Dictionary<string, string> annotations, Action<PodSpec>? shape = null)
    {
        var d = new Deployment
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "web", Annotations = annotations },
            Spec = new DeploymentSpec
            {
                Template = new PodTemplateSpec
                {
                    Metadata = new ObjectMeta { Labels = new() { ["app"] = "web" }, Annotations = new() { ["team"] = "shop" } },
                    Spec = new PodSpec
                    {
                        Containers =
                        [
                            new Container
                            {
                                Name = "app",
                                Image = "registry.local/app:1",
                                Env = [new EnvVar { Name = "MODE", Value = "prod" }, new EnvVar { Name = "PORT", Value = "8080" }],
                                Ports =
                                [
                                    new ContainerPort { Name = "http", Port = 8080, Protocol = "TCP" },
                                    new ContainerPort { Name = "metrics", Port = 9090, Protocol = "TCP" },
                                ],
                            },
                            new Container { Name = "cache", Image = "registry.local/cache:1", Ports = [new ContainerPort { Name = "redis", Port = 6379 }] },
                        ],
                        Volumes = [new Volume { Name = "config", ConfigMap = new ConfigMapVolumeSource { Name = "web" } }],
                    },
                },
            },
        };
        shape?.Invoke(d.Spec.Template.Spec);
        return d;
    }

    private async Task<Deployment> SeedAsync(Dictionary<string, string> annotations, Action<PodSpec>? shape = null) =>
        await _deploymentsApi.SeedAsync(NewDeployment(annotations, shape), CancellationToken.None);

    private static Dictionary<string, string> Asking(string port, string? env = null)
    {
        var a = new Dictionary<string, string> { [Annotations.Interceptor] = "true", [Annotations.InterceptorPort] = port };
        if (env is not null) a[Annotations.InterceptorPortEnv] = env;
        return a;
    }

    private Deployment Stored() => _deploymentsApi.Stored(Ns, "web")!;

    private static string TemplateJson(Deployment d) =>
        JsonSerializer.Serialize(d.Spec.Template, KubeJsonContext.Default.PodTemplateSpec);

    private async Task AnnotateAsync(params (string Key, string? Value)[] changes)
    {
        var d = Stored();
        d.Metadata.Annotations ??= [];
        foreach (var (key, value) in changes)
        {
            if (value is null) d.Metadata.Annotations.Remove(key);
            else d.Metadata.Annotations[key] = value;
        }
        await _deploymentsApi.UpdateAsync(d, CancellationToken.None);
    }

    [Fact]
    public async Task A_named_port_moves_to_the_sidecar_and_the_app_is_told_its_loopback_port()
    {
        await SeedAsync(Asking("http:18080", "PORT"));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var d = Stored();
        var spec = d.Spec.Template.Spec;
        Assert.Equal(["app", "cache", "crsc-interceptor"], spec.Containers.Select(c => c.Name));
        var app = spec.Containers[0];
        Assert.Equal(["metrics"], app.Ports!.Select(p => p.Name)); // http is the sidecar's now
        Assert.Equal([("MODE", "prod"), ("PORT", "18080")], app.Env!.Select(e => (e.Name, e.Value)));
        var sidecar = spec.Containers[2];
        Assert.Equal(Image, sidecar.Image);
        Assert.Equal(["/usr/bin/crsc-interceptor"], sidecar.Command!); // the small binary, `crsc interceptor` on its own
        Assert.Equal(["--listen", "0.0.0.0:8080", "--upstream", "127.0.0.1:18080", "--mode", "http",
            "--control-socket", "/run/crsc-interceptor/control.sock", "--metrics-listen", ":9464"], sidecar.Args!);
        Assert.Equal(2, sidecar.Ports!.Count); // the app's port, then the sidecar's metrics port
        var port = sidecar.Ports[0];
        Assert.Equal(("http", 8080, "TCP"), (port.Name, port.Port, port.Protocol));
        Assert.Equal(("crsc-metrics", 9464, "TCP"), (sidecar.Ports[1].Name, sidecar.Ports[1].Port, sidecar.Ports[1].Protocol));
        var mount = Assert.Single(sidecar.VolumeMounts!);
        Assert.Equal(("crsc-interceptor", "/run/crsc-interceptor"), (mount.Name, mount.MountPath));
        Assert.Equal("10m", sidecar.Resources!.Value.GetProperty("requests").GetProperty("cpu").GetString());
        Assert.Equal("64Mi", sidecar.Resources!.Value.GetProperty("limits").GetProperty("memory").GetString());
        Assert.False(sidecar.Extra!["securityContext"].GetProperty("allowPrivilegeEscalation").GetBoolean());
        Assert.Equal(["config", "crsc-interceptor"], spec.Volumes!.Select(v => v.Name));
        Assert.Equal(JsonValueKind.Object, spec.Volumes![1].EmptyDir!.Value.ValueKind);
        Assert.Equal("true", d.Spec.Template.Metadata!.Annotations![Annotations.InterceptorSidecarAttached]);
        Assert.Equal("shop", d.Spec.Template.Metadata.Annotations["team"]);
        Assert.True(d.Metadata.Annotations!.ContainsKey(Annotations.InterceptorOriginal));

        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorInjected);
        Assert.Equal(("Deployment", "web", "Normal"), (e.Kind, e.Name, e.Type));
        Assert.Contains("127.0.0.1:18080", e.Message);
        Assert.Contains("env PORT=18080", e.Message);
    }

    [Fact]
    public async Task A_numbered_port_is_taken_over_the_same_way_and_without_env_the_event_says_the_app_must_listen_there()
    {
        await SeedAsync(Asking("9090:19090"));

        await ReconcileAsync();

        var spec = Stored().Spec.Template.Spec;
        Assert.Equal(["http"], spec.Containers[0].Ports!.Select(p => p.Name));
        Assert.Equal([("MODE", "prod"), ("PORT", "8080")], spec.Containers[0].Env!.Select(e => (e.Name, e.Value))); // untouched
        var sidecar = spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.Equal(("metrics", 9090), (sidecar.Ports![0].Name, sidecar.Ports[0].Port));
        Assert.Contains("--listen", sidecar.Args!);
        Assert.Equal("0.0.0.0:9090", sidecar.Args![sidecar.Args.IndexOf("--listen") + 1]);
        Assert.Equal("127.0.0.1:19090", sidecar.Args![sidecar.Args.IndexOf("--upstream") + 1]);
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorInjected);
        Assert.Contains($"no {Annotations.InterceptorPortEnv}: container app must listen on 127.0.0.1:19090 by itself", e.Message);
    }

    [Fact]
    public async Task Several_ports_each_get_a_listener_and_their_own_env_var()
    {
        await SeedAsync(Asking("http:18080, 9090:19090", "PORT,METRICS_PORT"));

        await ReconcileAsync();

        var spec = Stored().Spec.Template.Spec;
        Assert.Null(spec.Containers[0].Ports);
        Assert.Equal([("MODE", "prod"), ("PORT", "18080"), ("METRICS_PORT", "19090")], spec.Containers[0].Env!.Select(e => (e.Name, e.Value)));
        var sidecar = spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.Equal(["http", "metrics", "crsc-metrics"], sidecar.Ports!.Select(p => p.Name));
        Assert.Equal(["--listen", "0.0.0.0:8080,0.0.0.0:9090", "--upstream", "127.0.0.1:18080,127.0.0.1:19090",
            "--mode", "http", "--control-socket", "/run/crsc-interceptor/control.sock", "--metrics-listen", ":9464"], sidecar.Args!);
    }

    [Fact]
    public async Task Reconciling_again_writes_nothing_even_after_the_api_server_defaulted_fields_of_the_sidecar()
    {
        await SeedAsync(Asking("http:18080", "PORT"));
        await ReconcileAsync();
        Assert.Equal(1, _deploymentsApi.CallCount("update"));

        await ReconcileAsync();
        Assert.Equal(1, _deploymentsApi.CallCount("update"));

        // what the API server adds to a stored container (defaults) is not a difference; nor a reordered annotation map
        var d = Stored();
        var sidecar = d.Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        sidecar.Extra!["terminationMessagePath"] = JsonDocument.Parse("\"/dev/termination-log\"").RootElement.Clone();
        sidecar.Extra["terminationMessagePolicy"] = JsonDocument.Parse("\"File\"").RootElement.Clone();
        d.Spec.Template.Metadata!.Annotations = d.Spec.Template.Metadata.Annotations!.Reverse().ToDictionary();
        await _deploymentsApi.SeedAsync(d, CancellationToken.None);
        await ReconcileAsync();
        await ReconcileAsync();
        Assert.Equal(1, _deploymentsApi.CallCount("update"));
        Assert.Single(_events.Events, e => e.Reason.StartsWith("Interceptor", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Removing_the_annotation_puts_the_template_back_exactly()
    {
        var original = await SeedAsync(Asking("http:18080,metrics:19090", "PORT,METRICS_PORT"));
        await ReconcileAsync();
        Assert.NotEqual(TemplateJson(original), TemplateJson(Stored()));

        await AnnotateAsync((Annotations.Interceptor, null));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var d = Stored();
        Assert.Equal(TemplateJson(original), TemplateJson(d));
        Assert.False(d.Metadata.Annotations!.ContainsKey(Annotations.InterceptorOriginal));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorRemoved);
        Assert.Equal("Normal", e.Type);

        // and nothing more to do
        var writes = _deploymentsApi.CallCount("update");
        await ReconcileAsync();
        Assert.Equal(writes, _deploymentsApi.CallCount("update"));
    }

    [Theory]
    [InlineData("number on another container")]
    [InlineData("name on the app")]
    [InlineData("number taken over")]
    [InlineData("loopback")]
    public async Task A_pod_that_uses_the_metrics_port_or_its_name_gets_no_metrics_port_nor_flag(string how)
    {
        var asking = Asking(how == "number taken over" ? "9464:19464" : how == "loopback" ? "http:9464" : "http:18080");
        await SeedAsync(asking, how switch
        {
            "number on another container" => s => s.Containers[1].Ports!.Add(new ContainerPort { Name = "exporter", Port = 9464 }),
            "name on the app" => s => s.Containers[0].Ports!.Add(new ContainerPort { Name = "crsc-metrics", Port = 9999 }),
            "number taken over" => s => s.Containers[0].Ports!.Add(new ContainerPort { Name = "admin", Port = 9464 }),
            _ => null,
        });

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var sidecar = Stored().Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.DoesNotContain("--metrics-listen", sidecar.Args!);
        Assert.DoesNotContain(sidecar.Ports!, p => p.Name == "crsc-metrics" && p.Port == 9464);
        Assert.Single(sidecar.Ports!); // the one port it took over
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorInjected);
        Assert.Contains("no metrics port: the pod already uses port 9464 or the name crsc-metrics", e.Message);
    }

    [Fact]
    public async Task The_metrics_port_is_an_option_and_said_in_the_Event()
    {
        await SeedAsync(Asking("http:18080"));
        var d = Stored();
        var outcome = InterceptorInjection.Reconcile(d, new InterceptorSidecarOptions { Image = Image, MetricsPort = 9500 });
        Assert.Null(outcome.Error);
        var sidecar = d.Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.Equal([":9500"], sidecar.Args!.SkipWhile(a => a != "--metrics-listen").Skip(1));
        Assert.Contains(sidecar.Ports!, p => (p.Name, p.Port) == ("crsc-metrics", 9500));
        Assert.Contains("its metrics on port crsc-metrics (9500)", outcome.Description);

        var off = Stored();
        InterceptorInjection.Reconcile(off, new InterceptorSidecarOptions { Image = Image, MetricsPort = null });
        var plain = off.Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.DoesNotContain("--metrics-listen", plain.Args!);
        Assert.Single(plain.Ports!);
    }

    [Fact]
    public async Task Changing_the_port_annotation_moves_the_sidecar_to_the_new_port_from_the_original_template()
    {
        var original = await SeedAsync(Asking("http:18080", "PORT"));
        await ReconcileAsync();

        await AnnotateAsync((Annotations.InterceptorPort, "metrics:19090"), (Annotations.InterceptorPortEnv, null));
        await ReconcileAsync();

        var spec = Stored().Spec.Template.Spec;
        Assert.Equal(["http"], spec.Containers[0].Ports!.Select(p => p.Name)); // http back where it was
        Assert.Equal([("MODE", "prod"), ("PORT", "8080")], spec.Containers[0].Env!.Select(e => (e.Name, e.Value)));
        Assert.Equal(["metrics", "crsc-metrics"], spec.Containers.Single(c => c.Name == "crsc-interceptor").Ports!.Select(p => p.Name));
        Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorUpdated);

        await AnnotateAsync((Annotations.Interceptor, "false"));
        await ReconcileAsync();
        Assert.Equal(TemplateJson(original), TemplateJson(Stored()));
    }

    [Fact]
    public async Task A_users_edit_of_the_template_is_kept_through_injection_and_revert()
    {
        await SeedAsync(Asking("http:18080"));
        await ReconcileAsync();

        var d = Stored();
        d.Spec.Template.Spec.Containers[0].Image = "registry.local/app:2";
        await _deploymentsApi.UpdateAsync(d, CancellationToken.None);
        await ReconcileAsync();
        Assert.Equal(2, _deploymentsApi.CallCount("update")); // the user's only

        await AnnotateAsync((Annotations.Interceptor, null));
        await ReconcileAsync();
        var app = Stored().Spec.Template.Spec.Containers[0];
        Assert.Equal("registry.local/app:2", app.Image);
        Assert.Equal(["http", "metrics"], app.Ports!.Select(p => p.Name));
    }

    [Fact]
    public async Task The_write_is_conditional_on_the_resource_version_and_a_conflict_decides_again()
    {
        await SeedAsync(Asking("http:18080", "PORT"));
        var once = true;
        _deploymentsApi.BeforeCall = (verb, _) =>
        {
            if (verb != "update" || !once) return;
            once = false;
            // a user's edit lands after the reconciler read the Deployment: the PUT with the old resourceVersion is a 409
            _deploymentsApi.PatchAsync(Ns, "web", Crsc.Controllers.Kubernetes.PatchType.Merge,
                """{"spec":{"replicas":3}}""", CancellationToken.None).GetAwaiter().GetResult();
        };

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var d = Stored();
        Assert.Equal(2, _deploymentsApi.CallCount("update"));
        Assert.Equal(3, d.Spec.Replicas);
        Assert.Contains(d.Spec.Template.Spec.Containers, c => c.Name == "crsc-interceptor");
    }

    public static TheoryData<string, string?, string, Action<PodSpec>?> BadInput => new()
    {
        { "http", null, "is not <containerPort name or number>:<loopback port>", null },
        { "http:18080:1", null, "is not <containerPort name or number>:<loopback port>", null },
        { "http:", null, "is not <containerPort name or number>:<loopback port>", null },
        { "http:abc", null, "loopback port 'abc'", null },
        { "grpc:18080", null, "no container declares a port named 'grpc'", null },
        { "7070:18080", null, "no container declares containerPort 7070", null },
        { "http:9090", null, "loopback port 9090 for http is already containerPort metrics (9090) of container app", null },
        { "http:6379", null, "already containerPort redis (6379) of container cache", null },
        { "http:8080", null, "loopback port 8080 for http is already containerPort http (8080)", null },
        { "http:70000", null, "loopback port 70000", null },
        { "http:0", null, "out of range", null },
        { "70000:18080", null, "port 70000", null },
        { "http:18080", "1PORT", "'1PORT' is not a valid environment variable name", null },
        { "http:18080", "MY-PORT", "'MY-PORT' is not a valid environment variable name", null },
        { "http:18080", "PORT,OTHER", "names 2 env var(s) for 1 port(s)", null },
        { "http:18080,metrics:18080", null, "loopback port 18080 is given to more than one port", null },
        { "http:18080,http:18081", null, "port http is listed twice", null },
        { "8080:18080", null, "port 8080 is declared more than once",
            s => s.Containers[1].Ports!.Add(new ContainerPort { Name = "alt", Port = 8080 }) },
        { "http:18080", null, "port http is declared more than once",
            s => s.Containers[1].Ports!.Add(new ContainerPort { Name = "http", Port = 8081 }) },
        { "http:18080", null, "the interceptor serves TCP only",
            s => s.Containers[0].Ports![0].Protocol = "UDP" },
        { "http:18080", null, "a container named crsc-interceptor that crsc did not add",
            s => s.Containers.Add(new Container { Name = "crsc-interceptor", Image = "mine" }) },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public async Task Bad_input_is_a_warning_event_naming_the_annotation_and_no_template_change(
        string port, string? env, string problem, Action<PodSpec>? shape)
    {
        var seeded = await SeedAsync(Asking(port, env), shape);

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Equal(0, _deploymentsApi.CallCount("update"));
        Assert.Equal(TemplateJson(seeded), TemplateJson(Stored()));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Equal(("Deployment", "web", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains(problem, e.Message);
        var aboutEnv = problem.Contains("environment variable", StringComparison.Ordinal) || problem.Contains("env var(s)", StringComparison.Ordinal);
        Assert.Contains($"annotation {(aboutEnv ? Annotations.InterceptorPortEnv : Annotations.InterceptorPort)}", e.Message);
    }

    [Theory]
    [InlineData("true", "all", "all")]
    [InlineData("true", "non-GET", "non-GET")]
    [InlineData("true", "POST, PUT,POST", "POST,PUT")]
    [InlineData("false", "all", null)] // off: the methods are ignored
    [InlineData(null, "all", null)]
    public async Task Replay_annotations_become_the_sidecars_replay_flags(string? replay, string methods, string? flag)
    {
        var asking = Asking("http:18080", "PORT");
        if (replay is not null) asking[Annotations.InterceptorReplay] = replay;
        asking[Annotations.InterceptorReplayMethods] = methods;
        await SeedAsync(asking);

        await ReconcileAsync();

        var sidecar = Stored().Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        string[] expected = ["--listen", "0.0.0.0:8080", "--upstream", "127.0.0.1:18080", "--mode", "http",
            "--control-socket", "/run/crsc-interceptor/control.sock", .. flag is null ? Array.Empty<string>() : ["--replay-methods", flag],
            "--metrics-listen", ":9464"];
        Assert.Equal(expected, sidecar.Args!);
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInterceptorInjected);
        Assert.Equal(flag is not null, e.Message.Contains("replayed after a restore", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("yes", "all", "annotation crsc.io/interceptor-replay: 'yes' is neither")]
    [InlineData("true", null, "annotation crsc.io/interceptor-replay-methods is required")]
    [InlineData("true", "none", "annotation crsc.io/interceptor-replay-methods is required")]
    [InlineData("true", "post", "annotation crsc.io/interceptor-replay-methods: 'post' is not")]
    [InlineData("true", "POST,", "annotation crsc.io/interceptor-replay-methods: 'POST,' is not")]
    [InlineData("true", "non-get", "annotation crsc.io/interceptor-replay-methods: 'non-get' is not")]
    public async Task A_bad_replay_annotation_is_a_warning_event_and_no_injection(string replay, string? methods, string problem)
    {
        var asking = Asking("http:18080", "PORT");
        asking[Annotations.InterceptorReplay] = replay;
        if (methods is not null) asking[Annotations.InterceptorReplayMethods] = methods;
        var seeded = await SeedAsync(asking);

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Equal(0, _deploymentsApi.CallCount("update"));
        Assert.Equal(TemplateJson(seeded), TemplateJson(Stored()));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Equal(("Deployment", "web", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public async Task Without_a_port_annotation_the_interceptor_is_refused_with_a_warning()
    {
        var seeded = await SeedAsync(new() { [Annotations.Interceptor] = "true" });

        await ReconcileAsync();

        Assert.Equal(0, _deploymentsApi.CallCount("update"));
        Assert.Equal(TemplateJson(seeded), TemplateJson(Stored()));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Contains($"annotation {Annotations.InterceptorPort} is required", e.Message);
    }

    [Fact]
    public async Task A_bad_annotation_on_an_injected_deployment_leaves_the_injection_as_it_is()
    {
        await SeedAsync(Asking("http:18080", "PORT"));
        await ReconcileAsync();
        var injected = TemplateJson(Stored());

        await AnnotateAsync((Annotations.InterceptorPort, "http:99999"));
        await ReconcileAsync();

        Assert.Equal(injected, TemplateJson(Stored()));
        Assert.Equal(2, _deploymentsApi.CallCount("update")); // the annotation's only
        Assert.Contains(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation && e.Message.Contains("99999"));
    }

    [Fact]
    public async Task A_deployment_that_does_not_ask_is_not_written()
    {
        await SeedAsync(new() { [Annotations.InterceptorPort] = "http:18080" });

        await ReconcileAsync();

        Assert.Equal(0, _deploymentsApi.CallCount("update"));
        Assert.DoesNotContain(_events.Events, e => e.Reason.StartsWith("Interceptor", StringComparison.Ordinal));
    }

    [Fact]
    public void Changes_to_the_template_or_the_interceptor_annotations_queue_the_deployment()
    {
        var queued = new List<ObjectKey>();
        var handler = DeploymentReconciler.DeploymentEvents(queued.Add);
        Deployment D(long generation, string? port)
        {
            var d = NewDeployment(port is null ? [] : Asking(port));
            d.Metadata.Uid = "u1";
            d.Metadata.Generation = generation;
            return d;
        }

        handler.OnUpdate(D(1, "http:18080"), D(2, "http:18080")); // the template changed (someone removed the sidecar)
        handler.OnUpdate(D(1, "http:18080"), D(1, "http:18081"));
        handler.OnUpdate(D(1, "http:18080"), D(1, null));
        Assert.Equal(3, queued.Count);
        var replaying = D(1, "http:18080");
        replaying.Metadata.Annotations![Annotations.InterceptorReplay] = "true";
        handler.OnUpdate(D(1, "http:18080"), replaying);
        var methods = D(1, "http:18080");
        methods.Metadata.Annotations![Annotations.InterceptorReplayMethods] = "all";
        handler.OnUpdate(D(1, "http:18080"), methods);
        Assert.Equal(5, queued.Count);
    }
}
