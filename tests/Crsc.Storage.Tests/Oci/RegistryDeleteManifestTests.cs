using System.Net;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Tests.Oci;

/// <summary>
/// <see cref="RegistryClient.DeleteManifestAsync"/>: what retention in the registry rests on (a replicated checkpoint's
/// manifest deleted with the checkpoint).
/// </summary>
public sealed class RegistryDeleteManifestTests : IAsyncLifetime
{
    private const string Repo = "crsc/default/web";
    private readonly List<FakeRegistry> _registries = [];
    private readonly List<RegistryClient> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _clients) c.Dispose();
        foreach (var r in _registries) await r.DisposeAsync();
    }

    private async Task<(FakeRegistry Registry, RegistryClient Client)> StartAsync(FakeRegistryOptions options, RegistryCredentials? credentials = null)
    {
        var registry = await FakeRegistry.StartAsync(options);
        _registries.Add(registry);
        var client = new RegistryClient(new RegistryClientOptions
        {
            Registry = registry.Host, Insecure = true, Credentials = credentials, MaxAttempts = 2,
            RetryInitialDelay = TimeSpan.FromMilliseconds(1), RetryMaxDelay = TimeSpan.FromMilliseconds(2),
        }, TimeProvider.System, NullLogger<RegistryClient>.Instance);
        _clients.Add(client);
        return (registry, client);
    }

    private static async Task<TestImage> PushAsync(RegistryClient client, string tag = "v1")
    {
        var image = TestImage.WithRandomFile(2000);
        await client.PushAsync(new RegistryImage(Repo, tag,
            image.Blobs.Select(b => new RegistryBlob(b.Digest, b.Content.Length, b.MediaType,
                _ => Task.FromResult<Stream>(new MemoryStream(b.Content)))).ToList(),
            image.Manifest, TestImage.ManifestMediaType), CancellationToken.None);
        return image;
    }

    [Fact]
    public async Task A_manifest_is_deleted_by_digest_with_a_token_for_the_delete_action_and_a_second_delete_finds_it_gone()
    {
        var (registry, client) = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Bearer, DeletesEnabled = true,
            Users = new Dictionary<string, string> { ["alice"] = "s3cret" },
        }, new RegistryCredentials("alice", "s3cret"));
        var image = await PushAsync(client);

        Assert.True(await client.DeleteManifestAsync(Repo, image.ManifestDigest, CancellationToken.None));

        Assert.Null(registry.Manifest(Repo, image.ManifestDigest));
        Assert.Null(registry.Manifest(Repo, "v1"));
        Assert.Contains(registry.Requests, r => r.Path == "/token" && r.Query.Contains("scope=repository%3Acrsc%2Fdefault%2Fweb%3Adelete", StringComparison.Ordinal));
        Assert.False(await client.DeleteManifestAsync(Repo, image.ManifestDigest, CancellationToken.None));
    }

    [Fact]
    public async Task A_registry_without_deletes_answers_405_and_the_manifest_stays()
    {
        var (registry, client) = await StartAsync(new FakeRegistryOptions());
        var image = await PushAsync(client);

        var e = await Assert.ThrowsAsync<RegistryException>(() => client.DeleteManifestAsync(Repo, image.ManifestDigest, CancellationToken.None));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, e.StatusCode);
        Assert.Equal("UNSUPPORTED", e.ErrorCode);
        Assert.Contains(image.ManifestDigest, e.Message);
        Assert.NotNull(registry.Manifest(Repo, image.ManifestDigest));
    }

    [Fact]
    public async Task A_5xx_is_tried_again()
    {
        var (registry, client) = await StartAsync(new FakeRegistryOptions { DeletesEnabled = true });
        var image = await PushAsync(client);
        registry.FailNext(1, 503);

        Assert.True(await client.DeleteManifestAsync(Repo, image.ManifestDigest, CancellationToken.None));

        Assert.Equal(2, registry.Requests.Count(r => r.Method == "DELETE"));
        Assert.Null(registry.Manifest(Repo, image.ManifestDigest));
    }
}
