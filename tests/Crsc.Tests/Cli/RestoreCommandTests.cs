using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Cli;
using Crsc.Controllers.Kubernetes;
using Crsc.Kube;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Tests.Cluster;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc restore</c> against <see cref="FakeApiServer"/> over HTTP with the real client; the test plays the Restore
/// reconciler by writing the Restore's status.
/// </summary>
public sealed class RestoreCommandTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("crsc-restore-cli-");
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
        SeedDeployment("cart", "app", "crsc-interceptor");
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private void SeedDeployment(string name, params string[] containers) => _server.Seed(Resources.Deployments, new Deployment
    {
        Metadata = new ObjectMeta { Namespace = "shop", Name = name },
        Spec = new DeploymentSpec
        {
            Template = new PodTemplateSpec { Spec = new PodSpec { Containers = [.. containers.Select(c => new Container { Name = c, Image = "registry.local/" + c })] } },
        },
    });

    private List<Restore> StoredRestores() =>
        [.. _server.All(_server.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscResources.Restores.Json)!)];

    private Task<(int Code, string Out, string Err)> RunAsync(params string[] args) =>
        CliStore.RunAsync(["restore", .. args, "--kubeconfig", _kubeconfig]);

    private async Task<Restore> WaitForRestoreAsync()
    {
        await Eventually.TrueAsync(() => StoredRestores().Count == 1, "the command created a Restore");
        return StoredRestores()[0];
    }

    /// <summary>What the Restore reconciler would write.</summary>
    private async Task SetStatusAsync(string name, RestorePhase phase, string message, int? attempts = null)
    {
        var client = _api.Resource(CrscResources.Restores);
        var r = await client.GetAsync("shop", name, CancellationToken.None);
        r.Status ??= new RestoreStatus();
        r.Status.Phase = phase;
        r.Status.Message = message;
        r.Status.Attempts = attempts ?? r.Status.Attempts;
        if (phase != RestorePhase.Pending)
        {
            r.Status.CheckpointName = "cart-app-20260101120000";
            r.Status.PodName = "cart-7d9f8b6c5-x2k4q";
        }
        await client.UpdateStatusAsync(r, CancellationToken.None);
    }

    [Fact]
    public async Task Creates_the_restore_then_prints_each_phase_and_exits_0_when_restored()
    {
        var run = RunAsync("shop/cart", "--timeout", "60s");
        var r = await WaitForRestoreAsync();
        var name = r.Metadata.Name!;
        Assert.StartsWith("cart-restore-", name);
        Assert.Equal((RestoreTargetKind.Deployment, "cart"), (r.Spec.Target.Kind, r.Spec.Target.Name));
        Assert.Equal("app", r.Spec.Container); // the only container besides crsc's sidecar
        Assert.Null(r.Spec.CheckpointName);
        Assert.Equal((RestoreFallback.ColdStart, 3), (r.Spec.Fallback, r.Spec.MaxAttempts));
        Assert.Equal("cart", r.Metadata.Labels![Labels.Workload]);
        Assert.False(r.Metadata.Annotations?.ContainsKey(Annotations.FailedPod) ?? false); // a user's, not an incident's

        await Eventually.TrueAsync(() => _server.Requests.Any(q => q.IsWatch && q.Path.EndsWith("/restores", StringComparison.Ordinal)), "the command watches");
        await SetStatusAsync(name, RestorePhase.Pending, "choosing a checkpoint");
        await SetStatusAsync(name, RestorePhase.Restoring, "patching the container image to the checkpoint image", attempts: 1);
        // the server ends the watch in the middle: the command watches again from where it was
        _server.CloseWatches();
        await SetStatusAsync(name, RestorePhase.Restoring, "container app runs the checkpoint image", attempts: 1);
        await SetStatusAsync(name, RestorePhase.Restored, "container app of pod cart-7d9f8b6c5-x2k4q restored from cart-app-20260101120000", attempts: 1);
        var (code, output, err) = await run;

        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains($"Restore shop/{name} created: container app of deployment shop/cart from the latest completed checkpoint, fallback ColdStart, at most 3 attempt(s)", output);
        string[] expected =
        [
            "  [Pending] waiting for the crsc daemon that leads to pick it up",
            "  [Pending] choosing a checkpoint",
            "  [Restoring] attempt 1/3, checkpoint cart-app-20260101120000, pod cart-7d9f8b6c5-x2k4q: patching the container image to the checkpoint image",
            "  [Restoring] attempt 1/3, checkpoint cart-app-20260101120000, pod cart-7d9f8b6c5-x2k4q: container app runs the checkpoint image",
            "  [Restored] attempt 1/3, checkpoint cart-app-20260101120000, pod cart-7d9f8b6c5-x2k4q: container app of pod cart-7d9f8b6c5-x2k4q restored from cart-app-20260101120000",
            $"Restore shop/{name} Restored: container app of pod cart-7d9f8b6c5-x2k4q restored from cart-app-20260101120000",
        ];
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToArray();
        Assert.Equal(expected, lines);
    }

    [Theory]
    [InlineData(RestorePhase.FellBack, "every attempt failed; the original image is back (cold start)")]
    [InlineData(RestorePhase.Failed, "no completed checkpoint of container app")]
    public async Task Exits_1_with_the_final_message_when_the_restore_does_not_succeed(RestorePhase phase, string message)
    {
        var run = RunAsync("shop/cart", "--container", "app", "--checkpoint", "cart-app-20260101120000", "--fallback", "fail", "--max-attempts", "2");
        var r = await WaitForRestoreAsync();
        Assert.Equal(("app", "cart-app-20260101120000", RestoreFallback.Fail, 2),
            (r.Spec.Container, r.Spec.CheckpointName, r.Spec.Fallback, r.Spec.MaxAttempts));
        await SetStatusAsync(r.Metadata.Name!, RestorePhase.Restoring, "attempt 1", attempts: 1);
        await SetStatusAsync(r.Metadata.Name!, phase, message, attempts: 2);
        var (code, output, err) = await run;

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains($"crsc: restore shop/{r.Metadata.Name} {phase}: {message}", err);
        Assert.Contains($"  [{phase}] attempt 2/2", output);
        Assert.DoesNotContain($"Restore shop/{r.Metadata.Name} Restored", output);
    }

    [Fact]
    public async Task Exits_1_when_the_restore_does_not_finish_in_time()
    {
        var (code, _, err) = await RunAsync("shop/cart", "--timeout", "2s");
        Assert.Equal(ExitCodes.Failure, code);
        var name = Assert.Single(StoredRestores()).Metadata.Name;
        Assert.Contains($"restore shop/{name} did not finish within 2s (phase Pending); it goes on in the cluster", err);
    }

    [Fact]
    public async Task No_wait_json_prints_the_created_restore_and_returns()
    {
        var (code, output, err) = await RunAsync("shop/cart", "--no-wait", "--json", "--fallback", "ColdStart");
        Assert.True(code == ExitCodes.Ok, err);
        var printed = JsonSerializer.Deserialize(output.Trim(), CrscResources.Restores.Json)!;
        var stored = Assert.Single(StoredRestores());
        Assert.Equal(stored.Metadata.Name, printed.Metadata.Name);
        Assert.Equal(stored.Metadata.Uid, printed.Metadata.Uid);
        Assert.Equal("app", printed.Spec.Container);
    }

    [Fact]
    public async Task Allow_unauthenticated_marks_the_restore_for_the_node_and_warns()
    {
        var (code, _, err) = await RunAsync("shop/cart", "--no-wait", "--allow-unauthenticated");
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains("warning: --allow-unauthenticated", err);
        Assert.Equal("true", Assert.Single(StoredRestores()).Metadata.Annotations![Annotations.AllowUnauthenticated]);

        (code, _, err) = await RunAsync("shop/cart", "--no-wait");
        Assert.True(code == ExitCodes.Ok, err);
        Assert.DoesNotContain("warning", err);
        Assert.Single(StoredRestores(), r => r.Metadata.Annotations?.ContainsKey(Annotations.AllowUnauthenticated) != true);
    }

    [Fact]
    public async Task A_missing_deployment_or_container_is_an_error_naming_it_and_creates_nothing()
    {
        SeedDeployment("multi", "app", "cache", "crsc-interceptor");
        var missing = await RunAsync("shop/nope");
        Assert.Equal(ExitCodes.Failure, missing.Code);
        Assert.Contains("deployment shop/nope not found", missing.Err);

        var several = await RunAsync("shop/multi");
        Assert.Equal(ExitCodes.Failure, several.Code);
        Assert.Contains("deployment shop/multi has several containers: app, cache; name one with --container", several.Err);

        var wrong = await RunAsync("shop/cart", "--container", "db");
        Assert.Equal(ExitCodes.Failure, wrong.Code);
        Assert.Contains("deployment shop/cart has no container 'db'; it has: app", wrong.Err);
        Assert.Empty(StoredRestores());
    }

    [Theory]
    [InlineData("'a/b/c' is not NS/DEPLOYMENT", "a/b/c")]
    [InlineData("'cart' is not NS/DEPLOYMENT", "cart")]
    [InlineData("namespace 'Shop' is not a valid DNS-1123 label", "Shop/cart")]
    [InlineData("deployment 'cart_v2' is not a valid DNS-1123 subdomain", "shop/cart_v2")]
    [InlineData("--container 'App' is not a valid DNS-1123 label", "shop/cart", "--container", "App")]
    [InlineData("--checkpoint 'x..y' is not a valid DNS-1123 subdomain", "shop/cart", "--checkpoint", "x..y")]
    [InlineData("--fallback 'Sometimes' is not ColdStart or Fail", "shop/cart", "--fallback", "Sometimes")]
    [InlineData("--fallback '0' is not ColdStart or Fail", "shop/cart", "--fallback", "0")]
    [InlineData("--max-attempts '0' is not a whole number from 1 to 10", "shop/cart", "--max-attempts", "0")]
    [InlineData("--max-attempts '11' is not a whole number from 1 to 10", "shop/cart", "--max-attempts", "11")]
    [InlineData("--timeout 'soon' is not a duration", "shop/cart", "--timeout", "soon")]
    [InlineData("--timeout '60' has no unit: write 60s, 60m or 60h", "shop/cart", "--timeout", "60")]
    public async Task Usage_errors_name_the_bad_value_exit_2_and_create_nothing(string message, params string[] args)
    {
        var (code, _, err) = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(message, err);
        Assert.Contains("Run 'crsc restore --help' for usage.", err);
        Assert.Empty(StoredRestores());
        Assert.DoesNotContain(_server.Requests, q => q.IsWrite);
    }

    [Fact]
    public async Task Without_an_API_server_configured_it_exits_78()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"))) return; // in a cluster there is one
        var (code, _, err) = await CliStore.RunAsync("restore", "shop/cart", "--kubeconfig=");
        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains("no API server configured", err);

        var (bad, _, badErr) = await CliStore.RunAsync("restore", "shop/cart", "--kubeconfig", _dir.Combine("missing"));
        Assert.Equal(ExitCodes.Config, bad);
        Assert.Contains("kubeconfig", badErr);
        Assert.Empty(StoredRestores());
    }

    [Fact]
    public async Task Help_explains_the_verb()
    {
        var (code, output, _) = await CliStore.RunAsync("restore", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("Usage: crsc restore [options] NS/DEPLOYMENT", output);
        foreach (var option in new[] { "--container NAME", "--checkpoint NAME", "--fallback ColdStart|Fail", "--max-attempts N", "--no-wait", "--timeout DURATION", "--json", "--kubeconfig VALUE" })
            Assert.Contains(option, output);
        Assert.Contains("Exit 0 when Restored, 1 when Failed, FellBack or not finished in time", output);
        var (_, root, _) = await CliStore.RunAsync("--help");
        Assert.Contains("restore", root);
    }
}
