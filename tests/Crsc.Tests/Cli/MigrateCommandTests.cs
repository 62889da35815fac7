using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Cli;
using Crsc.Kube;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Tests.Cluster;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc migrate</c> against <see cref="FakeApiServer"/> over HTTP with the real client; the test plays the migration
/// reconciler by writing the Restore's status.
/// </summary>
public sealed class MigrateCommandTests : IAsyncLifetime
{
    private const string DeploymentPod = "cart-7d9f8b6c5-x2k4q";
    private readonly TempDir _dir = new("crsc-migrate-cli-");
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;
    private string _kubeconfig = "";

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _server.Register(CrscResources.Restores, hasStatusSubresource: true);
        _api = ClusterTestKit.Api(_server);
        _kubeconfig = _dir.Combine("kubeconfig");
        await File.WriteAllTextAsync(_kubeconfig, _server.KubeconfigYaml());
        _server.Seed(Resources.Nodes, new Node { Metadata = new ObjectMeta { Name = "node-2" } });
        SeedReplicaSet("cart-7d9f8b6c5", gated: true);
        SeedReplicaSet("plain-5f6d7c8b9", gated: false);
        SeedPod(DeploymentPod, "cart-7d9f8b6c5", "app", "crsc-interceptor");
        SeedPod("plain-5f6d7c8b9-abcde", "plain-5f6d7c8b9", "app");
        SeedPod("solo", null, "app");
        SeedPod("multi", null, "app", "cache");
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private void SeedReplicaSet(string name, bool gated) => _server.Seed(Resources.ReplicaSets, new ReplicaSet
    {
        Metadata = new ObjectMeta { Namespace = "shop", Name = name },
        Spec = new ReplicaSetSpec
        {
            Template = new PodTemplateSpec
            {
                Spec = new PodSpec
                {
                    Containers = [new Container { Name = "app", Image = "registry.local/app" }],
                    Extra = gated
                        ? new() { ["schedulingGates"] = JsonDocument.Parse($$"""[{"name":"{{SchedulingGates.RestorePlacement}}"}]""").RootElement.Clone() }
                        : null,
                },
            },
        },
    });

    private void SeedPod(string name, string? replicaSet, params string[] containers) => _server.Seed(Resources.Pods, new Pod
    {
        Metadata = new ObjectMeta
        {
            Namespace = "shop", Name = name,
            OwnerReferences = replicaSet is null ? null : [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = replicaSet, Uid = "rs", Controller = true }],
        },
        Spec = new PodSpec { NodeName = "node-1", Containers = [.. containers.Select(c => new Container { Name = c, Image = "registry.local/" + c })] },
        Status = new PodStatus { Phase = "Running" },
    });

    private List<Restore> StoredRestores() =>
        [.. _server.All(_server.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscResources.Restores.Json)!)];

    private Task<(int Code, string Out, string Err)> RunAsync(params string[] args) =>
        CliStore.RunAsync(["migrate", .. args, "--kubeconfig", _kubeconfig]);

    private async Task SetStatusAsync(string name, RestorePhase phase, string message, string? downtime = null)
    {
        var client = _api.Resource(CrscResources.Restores);
        var r = await client.GetAsync("shop", name, CancellationToken.None);
        r.Status ??= new RestoreStatus();
        r.Status.Phase = phase;
        r.Status.Message = message;
        r.Status.Downtime = downtime;
        await client.UpdateStatusAsync(r, CancellationToken.None);
    }

    [Fact]
    public async Task Wait_creates_the_migration_prints_its_phases_on_stderr_and_the_downtime_at_the_end()
    {
        var run = RunAsync($"shop/{DeploymentPod}", "--to", "node-2", "--wait", "--timeout", "60s");
        await Eventually.TrueAsync(() => StoredRestores().Count == 1, "the command created a Restore");
        var r = StoredRestores()[0];
        var name = r.Metadata.Name!;
        Assert.StartsWith(DeploymentPod + "-migrate-", name);
        Assert.Equal((RestoreTargetKind.Pod, DeploymentPod, RestoreMode.Migration, "node-2", "app"),
            (r.Spec.Target.Kind, r.Spec.Target.Name, r.Spec.Mode, r.Spec.TargetNode, r.Spec.Container));

        await Eventually.TrueAsync(() => _server.Requests.Any(q => q.IsWatch && q.Path.EndsWith("/restores", StringComparison.Ordinal)), "the command watches");
        await SetStatusAsync(name, RestorePhase.Pending, "checkpointing container app of pod cart-7d9f8b6c5-x2k4q on node node-1");
        await SetStatusAsync(name, RestorePhase.Restoring, "replacement pod cart-7d9f8b6c5-zz9yy (pinned to node node-2) is restored");
        await SetStatusAsync(name, RestorePhase.Restored, "pod cart-7d9f8b6c5-x2k4q moved from node node-1 to node node-2: downtime 4s", downtime: "4s");
        var (code, output, err) = await run;

        Assert.True(code == ExitCodes.Ok, err);
        Assert.Equal(
        [
            "  [Pending] waiting for the crsc daemon that leads to pick it up",
            "  [Pending] checkpointing container app of pod cart-7d9f8b6c5-x2k4q on node node-1",
            "  [Restoring] replacement pod cart-7d9f8b6c5-zz9yy (pinned to node node-2) is restored",
            "  [Restored] pod cart-7d9f8b6c5-x2k4q moved from node node-1 to node node-2: downtime 4s",
        ], err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(
        [
            $"Migration shop/{name} created: container app of pod shop/{DeploymentPod} from node node-1 to node node-2",
            $"Migration shop/{name} Restored: pod cart-7d9f8b6c5-x2k4q moved from node node-1 to node node-2: downtime 4s",
            "downtime: 4s",
        ], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_failed_migration_exits_1_with_its_message()
    {
        var run = RunAsync("shop/solo", "--to", "node-2", "--wait", "--timeout", "60s");
        await Eventually.TrueAsync(() => StoredRestores().Count == 1, "the command created a Restore");
        await SetStatusAsync(StoredRestores()[0].Metadata.Name!, RestorePhase.Failed, "checkpoint solo-migrate-x-ckpt failed: criu dump failed");
        var (code, _, err) = await run;
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("Failed: checkpoint solo-migrate-x-ckpt failed: criu dump failed", err);
    }

    [Fact]
    public async Task Without_wait_it_creates_the_migration_and_returns()
    {
        var (code, output, err) = await RunAsync("shop/plain-5f6d7c8b9-abcde");
        Assert.True(code == ExitCodes.Ok, err);
        var r = Assert.Single(StoredRestores());
        Assert.Null(r.Spec.TargetNode);
        Assert.Contains("to where the scheduler puts its replacement", output);
    }

    [Theory]
    [InlineData("pod shop/nope not found", "shop/nope", "--to", "node-2")]
    [InlineData("node node-9 not found", $"shop/{DeploymentPod}", "--to", "node-9")]
    [InlineData("pod shop/solo is a bare pod (no controller): crsc makes it again itself and must be told where: give --to NODE", "shop/solo")]
    [InlineData("has no scheduling gate crsc.io/restore-placement", "shop/plain-5f6d7c8b9-abcde", "--to", "node-2")]
    [InlineData("pod shop/multi has several containers: app, cache; name one with --container", "shop/multi", "--to", "node-2")]
    [InlineData("pod shop/solo has no container 'db'; it has: app", "shop/solo", "--to", "node-2", "--container", "db")]
    public async Task What_the_API_tells_is_wrong_is_an_error_naming_it_and_creates_nothing(string message, params string[] args)
    {
        var (code, _, err) = await RunAsync(args);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains(message, err);
        Assert.Empty(StoredRestores());
        Assert.DoesNotContain(_server.Requests, q => q.IsWrite);
    }

    [Theory]
    [InlineData("'shop' is not NS/POD", "shop")]
    [InlineData("'a/b/c' is not NS/POD", "a/b/c")]
    [InlineData("namespace 'Shop' is not a valid DNS-1123 label", "Shop/solo")]
    [InlineData("pod 'so_lo' is not a valid DNS-1123 subdomain", "shop/so_lo")]
    [InlineData("--to 'Node_2' is not a valid node name", "shop/solo", "--to", "Node_2")]
    [InlineData("--timeout 'soon' is not a duration", "shop/solo", "--to", "node-2", "--timeout", "soon")]
    public async Task Usage_errors_name_the_bad_value_exit_2_and_create_nothing(string message, params string[] args)
    {
        var (code, _, err) = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(message, err);
        Assert.Contains("Run 'crsc migrate --help' for usage.", err);
        Assert.DoesNotContain(_server.Requests, q => q.IsWrite);
    }

    [Fact]
    public async Task Help_explains_deployment_and_bare_pods_the_gate_and_the_downtime()
    {
        var (code, output, _) = await CliStore.RunAsync("migrate", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("Usage: crsc migrate [options] NS/POD", output);
        foreach (var text in new[]
                 {
                     "--to NODE", "--wait", "a Deployment's pod is replaced by its ReplicaSet", "a bare pod (no controller) is made again",
                     "--to needs the gate crsc.io/restore-placement", "never the template", "the downtime on stdout", "approximated",
                 })
            Assert.Contains(text, output);
        var (_, root, _) = await CliStore.RunAsync("--help");
        Assert.Contains("migrate", root);
    }
}
