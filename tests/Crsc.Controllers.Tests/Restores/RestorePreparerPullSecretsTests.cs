using System.Text;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing.Kube;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// The node pulls a restore's base image with the credentials of the pod's <c>imagePullSecrets</c> (a node that never
/// ran the pod has neither the image nor the kubelet's credentials for it), as the kubelet would.
/// </summary>
public sealed class RestorePreparerPullSecretsTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private const string Password = "s3cret-pw";
    private readonly RestoreFixture _f = new();
    private readonly FakeContainerRuntime _runtime = new();
    private FakeResourceClient<Secret> SecretsApi => _f.Kube.For(Resources.Secrets);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _f.DisposeAsync().AsTask();

    /// <summary>P1 on n1 naming <paramref name="pullSecrets"/>, checkpoint c1, and Restore r1 Restoring.</summary>
    private async Task RestoringAsync(params string[] pullSecrets)
    {
        await _f.CreatePodAsync(P1);
        if (pullSecrets.Length > 0)
        {
            var pod = _f.PodsApi.Stored(Ns, P1)!;
            pod.Spec.ImagePullSecrets = [.. pullSecrets.Select(s => new LocalObjectReference { Name = s })];
            await _f.PodsApi.UpdateAsync(pod, CancellationToken.None);
        }
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync();
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private Task SecretAsync(string name, string json, string type = PodPullSecrets.DockerConfigJsonType, string? key = null) =>
        SecretsApi.SeedAsync(new Secret
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = name },
            Type = type,
            Data = new() { [key ?? (type == PodPullSecrets.DockerCfgType ? PodPullSecrets.DockerCfgKey : PodPullSecrets.DockerConfigJsonKey)] = Encoding.UTF8.GetBytes(json) },
        });

    private static string Auths(string registry, string user, string password = Password) =>
        "{\"auths\":{\"" + registry + "\":{\"auth\":\"" + B64(user + ":" + password) + "\"}}}";

    /// <summary>crsc's token for its own checkpoint images, none for anything else.</summary>
    private sealed class CheckpointToken : IPullCredentials
    {
        public RegistryAuth? For(string image, string restoreNamespace) =>
            image == ImageOf("c1") ? new RegistryAuth(Username: "crsc-restore", Password: "token") : null;
    }

    private Task<RestoreFixture.Node> NodeAsync(int maxPullAttempts = 3) => _f.StartNodeAsync("n1", _runtime,
        new RestorePreparerOptions { NodeName = "n1", PullCredentials = new CheckpointToken(), MaxPullAttempts = maxPullAttempts });

    private RegistryAuth? AuthOf(string image) => _runtime.PullAuths.Single(p => p.Image == image).Auth;

    [Fact]
    public async Task The_base_image_is_pulled_with_the_user_and_password_of_the_pods_dockerconfigjson_secret()
    {
        await SecretAsync("regcred", Auths("registry.local", "alice"));
        await RestoringAsync("regcred");
        var node = await NodeAsync();

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        Assert.Equal(new RegistryAuth(Username: "alice", Password: Password), AuthOf(ImageV1));
        // the checkpoint image keeps crsc's own credential
        Assert.Equal(new RegistryAuth(Username: "crsc-restore", Password: "token"), AuthOf(ImageOf("c1")));
        Assert.Equal(ConditionStatus.True, _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!.Status);
        Assert.Equal(1, SecretsApi.CallCount("get"));
    }

    [Fact]
    public async Task A_dockercfg_secret_and_a_key_with_a_scheme_and_path_are_used_too()
    {
        await SecretAsync("old-style", "{\"https://registry.local/counter\":{\"username\":\"bob\",\"password\":\"" + Password + "\"}}",
            PodPullSecrets.DockerCfgType);
        await RestoringAsync("old-style");
        var node = await NodeAsync();

        await node.ReconcileAsync("r1");

        Assert.Equal(new RegistryAuth(Username: "bob", Password: Password), AuthOf(ImageV1));
    }

    [Fact]
    public async Task Without_imagePullSecrets_the_base_image_is_pulled_without_credentials_and_no_secret_is_read()
    {
        await SecretAsync("regcred", Auths("registry.local", "alice"));
        await RestoringAsync();
        var node = await NodeAsync();

        await node.ReconcileAsync("r1");

        Assert.Null(AuthOf(ImageV1));
        Assert.Equal(0, SecretsApi.CallCount("get"));
    }

    [Fact]
    public async Task Missing_and_unusable_secrets_are_skipped_and_named_when_the_pull_fails()
    {
        await SecretAsync("other", Auths("other.example.com", "carol"));
        await SecretAsync("opaque", "{}", type: "Opaque", key: "password");
        await SecretAsync("broken", """{"auths":{"registry.local":{"auth":"not base64!"}}}""");
        await RestoringAsync("regcred", "other", "opaque", "broken");
        _runtime.OnPull = (image, _) => image == ImageV1
            ? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, $"pull image {image}: 401 Unauthorized", "Unknown", "unauthorized")
            : Task.CompletedTask;
        var node = await NodeAsync(maxPullAttempts: 1);

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        // tried without credentials, as the kubelet does when no secret applies
        Assert.Null(AuthOf(ImageV1));
        var cond = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;
        Assert.Equal((ConditionStatus.False, "PullFailed"), (cond.Status, cond.Reason));
        Assert.Contains("401 Unauthorized", cond.Message);
        Assert.Contains("imagePullSecrets: regcred not found; other has no entry for registry.local; "
            + "opaque is of type Opaque, not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg; "
            + "broken .dockerconfigjson entry \"registry.local\": \"auth\" is not base64", cond.Message);
        var ev = Assert.Single(_f.Events.Events, e => e.Reason == "ImagePullFailed");
        Assert.Equal(cond.Message, ev.Message);
    }

    [Fact]
    public async Task A_secret_that_cannot_be_read_is_named_and_the_next_one_used()
    {
        await SecretAsync("forbidden", Auths("registry.local", "mallory"));
        await SecretAsync("regcred", Auths("registry.local", "alice"));
        var gets = 0;
        SecretsApi.BeforeCall = (verb, _) =>
        {
            // the first read is of the first secret the pod names
            if (verb == "get" && ++gets == 1) throw new ForbiddenException("Forbidden", "secrets \"forbidden\" is forbidden");
        };
        await RestoringAsync("forbidden", "regcred");
        var node = await NodeAsync();

        await node.ReconcileAsync("r1");

        Assert.Equal(2, gets);
        Assert.Equal(new RegistryAuth(Username: "alice", Password: Password), AuthOf(ImageV1));
    }

    [Fact]
    public async Task When_the_first_matching_credential_is_refused_the_next_is_tried_and_no_password_is_told()
    {
        await SecretAsync("stale", Auths("registry.local", "old-user"));
        await SecretAsync("team", Auths("registry.local/counter", "team-user"));
        await SecretAsync("fresh", Auths("registry.local", "new-user"));
        await RestoringAsync("stale", "team", "fresh");
        var refused = new HashSet<string> { "team-user", "old-user" };
        _runtime.OnPull = (image, _) => image == ImageV1 && refused.Contains(_runtime.PullAuths[^1].Auth?.Username ?? "")
            ? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, $"pull image {image}: 401 Unauthorized", "Unknown", "unauthorized")
            : Task.CompletedTask;
        var node = await NodeAsync(maxPullAttempts: 1);

        await node.ReconcileAsync("r1");

        // the pod's order of secrets; all three tried, the last one pulls
        Assert.Equal(["old-user", "team-user", "new-user"],
            _runtime.PullAuths.Where(p => p.Image == ImageV1).Select(p => p.Auth!.Username));
        Assert.Equal(ConditionStatus.True, _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!.Status);

        // every credential refused: each is named by its user, never its password
        refused.Add("new-user");
        await _runtime.RemoveImageAsync(ImageV1, CancellationToken.None);
        await RestoringAgainAsync();
        await node.ReconcileAsync("r1");
        var cond = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;
        Assert.Equal(ConditionStatus.False, cond.Status);
        Assert.Contains("as user 'old-user': pull image", cond.Message);
        Assert.Contains("as user 'new-user': pull image", cond.Message);
        Assert.Contains("stale (entry registry.local) was tried; team (entry registry.local/counter) was tried", cond.Message);
        Assert.DoesNotContain(Password, cond.Message);
        Assert.DoesNotContain(_f.Events.Events, e => e.Message.Contains(Password, StringComparison.Ordinal));
    }

    /// <summary>Clears r1's ImagesReady so the node answers again (as for a new attempt).</summary>
    private async Task RestoringAgainAsync()
    {
        var r = _f.RestoresApi.Stored(Ns, "r1")!;
        r.Status!.Conditions!.RemoveAll(c => c.Type == RestoreConditions.ImagesReady);
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
    }
}
