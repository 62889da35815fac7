using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Crsc.Testing.Registry;

namespace Crsc.Storage.Tests.Oci;

/// <summary>
/// Node A takes a checkpoint into its store and publishes it as an image (on a registry that behaves like distribution:
/// 401 challenges, tokens, Range/206, Docker-Content-Digest); node B fetches it into its own store. Every hostile or
/// broken transfer is refused with the image named and leaves B's store as it was: no checkpoint, no file.
/// </summary>
public sealed class CheckpointImageFetcherTests : IAsyncLifetime
{
    private static readonly CheckpointImagePlatform Amd64 = new("linux", "amd64");
    private readonly StoreFixture _a = new();
    private readonly StoreFixture _b = new();
    private DiskCheckpointStore _storeA = null!;
    private DiskCheckpointStore? _storeB;
    private FakeRegistry? _registry;
    private readonly List<IDisposable> _disposables = [];

    public Task InitializeAsync()
    {
        _storeA = _a.Open();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var d in _disposables) d.Dispose();
        if (_registry is not null) await _registry.DisposeAsync();
        _storeB?.Dispose();
        _storeA.Dispose();
        _a.Dispose();
        _b.Dispose();
    }

    /// <summary>B's store: sharing A's key (the cluster's shared key), or with a key of its own.</summary>
    private DiskCheckpointStore StoreB(bool sharedKey = true) =>
        _storeB ??= _b.Open(o => o with { NodeName = "node-b", Key = sharedKey ? _a.Key : _b.Key });

    private CheckpointImageFetcher Fetcher(CheckpointFetchOptions? options = null, bool sharedKey = true)
    {
        var fetcher = new CheckpointImageFetcher(StoreB(sharedKey), options ?? Options(), _b.Time);
        _disposables.Add(fetcher);
        return fetcher;
    }

    private static CheckpointFetchOptions Options() => new()
    {
        Insecure = true,
        RetryInitialDelay = TimeSpan.Zero,
        RetryMaxDelay = TimeSpan.Zero,
        MaxAttempts = 4,
    };

    private async Task<FakeRegistry> RegistryAsync(FakeRegistryOptions? options = null) =>
        _registry ??= await FakeRegistry.StartAsync(options ?? new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Bearer,
            Users = new Dictionary<string, string> { ["puller"] = "secret" },
        });

    private static readonly RegistryCredentials Puller = new("puller", "secret");

    private async Task<CheckpointInfo> TakeAsync(CheckpointCompression compression = CheckpointCompression.Zstd)
    {
        var archive = new TestArchive();
        return await _storeA.IngestAsync(_a.Stage(archive), archive.Source(), new IngestOptions { Compression = compression }, null,
            CancellationToken.None);
    }

    private async Task<byte[]> StoredBytesAsync(CheckpointInfo c)
    {
        await using var s = await _storeA.OpenStoredAsync(c.Id, CancellationToken.None);
        var m = new MemoryStream();
        await s.CopyToAsync(m);
        return m.ToArray();
    }

    /// <summary>Puts the image of <paramref name="image"/> into the registry as a push would; returns the by-digest reference.</summary>
    private static string Publish(FakeRegistry registry, CheckpointImage image, byte[] layer)
    {
        registry.AddBlob(image.Repository, image.ConfigBytes);
        registry.AddBlobAs(image.Repository, image.Layer.Digest, layer);
        registry.AddManifest(image.Repository, image.Tag, image.ManifestBytes, image.Manifest.MediaType);
        return $"{registry.Host}/{image.Repository}@{image.Manifest.Digest}";
    }

    private async Task<(CheckpointInfo Info, CheckpointImage Image, byte[] Layer, string Reference)> PublishedAsync(
        CheckpointCompression compression = CheckpointCompression.Zstd, FakeRegistryOptions? options = null)
    {
        var info = await TakeAsync(compression);
        var image = new StoreImageRegistry(_storeA, Amd64).ImageOf(info);
        var layer = await StoredBytesAsync(info);
        var registry = await RegistryAsync(options);
        return (info, image, layer, Publish(registry, image, layer));
    }

    private void AssertNothingCommitted()
    {
        var store = StoreB();
        Assert.Empty(store.List());
        Assert.Empty(_b.StoreFiles()); // no archive, no manifest, no temp file
        Assert.Empty(Directory.EnumerateFileSystemEntries(store.StagingDirectory));
    }

    private static List<FakeRegistryRequest> BlobGets(FakeRegistry registry, string digest) =>
        registry.Requests.Where(r => r.Method == "GET" && r.Path.EndsWith("/blobs/" + digest, StringComparison.Ordinal)).ToList();

    [Theory]
    [InlineData(CheckpointCompression.Zstd)]
    [InlineData(CheckpointCompression.None)]
    public async Task A_checkpoint_of_node_A_fetched_from_a_registry_is_the_same_checkpoint_in_node_B_store(CheckpointCompression compression)
    {
        var (info, _, layer, reference) = await PublishedAsync(compression);
        var reported = new List<long>();

        var fetched = await Fetcher().FetchAsync(reference, Puller, new SyncProgress(reported.Add), CancellationToken.None);

        Assert.Equal(info.Id, fetched.Id);
        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Equal(info.Size, fetched.Size);
        Assert.Equal(info.UncompressedDigest, fetched.UncompressedDigest);
        Assert.Equal(compression, fetched.Compression);
        Assert.Equal("node-a", fetched.NodeName); // the manifest as A wrote it: where it was taken
        Assert.Equal(CheckpointAuthenticity.Verified, fetched.Authenticity);
        Assert.Equal(fetched, StoreB().Get(info.Id));
        Assert.StartsWith(_b.Checkpoints, fetched.ArchivePath, StringComparison.Ordinal);
        Assert.True((await StoreB().VerifyAsync(info.Id, CancellationToken.None)).Valid);
        await using (var a = await _storeA.OpenReadAsync(info.Id, CancellationToken.None))
        await using (var b = await StoreB().OpenReadAsync(info.Id, CancellationToken.None))
        {
            var (ma, mb) = (new MemoryStream(), new MemoryStream());
            await a.CopyToAsync(ma);
            await b.CopyToAsync(mb);
            Assert.Equal(ma.ToArray(), mb.ToArray());
        }
        Assert.Equal(layer.Length, reported[^1]);
        Assert.Equal(reported.Order(), reported);
        // B's store serves it as an image too, with the same manifest digest
        Assert.Equal(new StoreImageRegistry(_storeA, Amd64).ImageOf(info).Manifest.Digest,
            new StoreImageRegistry(StoreB(), Amd64).ImageOf(fetched).Manifest.Digest);
        // the registry asked for a token (401 challenge) and was answered
        Assert.True(_registry!.TokensIssued >= 1);

        // fetching it again changes nothing
        var again = await Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None);
        Assert.Equal(fetched, again);
        Assert.Single(StoreB().List());
    }

    [Fact]
    public async Task What_node_A_pushes_to_a_registry_under_a_prefix_node_B_fetches_by_the_reference_the_push_returned()
    {
        var info = await TakeAsync();
        var registry = await RegistryAsync();
        using var client = new RegistryClient(
            new RegistryClientOptions { Registry = registry.Host, Insecure = true, Credentials = Puller, MaxAttempts = 2 },
            _a.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<RegistryClient>.Instance);
        var pushed = await new RegistryPushPublisher(_storeA, client, RegistryLocation.Parse($"{registry.Host}/team"), Amd64)
            .PublishAsync(info, CancellationToken.None);
        Assert.StartsWith($"{registry.Host}/team/shop/cart/cart@sha256:", pushed);

        var fetched = await Fetcher().FetchAsync(pushed!, Puller, null, CancellationToken.None);

        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Equal(CheckpointAuthenticity.Verified, fetched.Authenticity);
        Assert.True((await StoreB().VerifyAsync(fetched.Id, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task A_checkpoint_is_fetched_from_a_node_endpoint_with_a_pull_token_of_the_shared_key()
    {
        var tokens = new PullTokens(_a.Key, _a.Time);
        var (info, image, _, reference) = await PublishedAsync(options: new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Basic,
            // what a node's endpoint accepts: a genuine token for the repository asked for
            CheckBasic = (_, password, repository) => tokens.Check(password, repository) == PullTokenVerdict.Valid,
        });

        await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher().FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(tokens, "crsc/shop/other/cart"), null, CancellationToken.None));
        AssertNothingCommitted();

        var fetched = await Fetcher().FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(tokens, image.Repository), null, CancellationToken.None);
        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Equal(CheckpointAuthenticity.Verified, fetched.Authenticity);
    }

    [Fact]
    public async Task A_blob_whose_bytes_are_not_its_digest_is_refused_and_nothing_is_committed()
    {
        var (_, image, layer, reference) = await PublishedAsync();
        var tampered = (byte[])layer.Clone();
        tampered[tampered.Length / 2] ^= 0x5a;
        _registry!.AddBlobAs(image.Repository, image.Layer.Digest, tampered);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Equal(reference, e.Image);
        Assert.Contains(reference, e.Message);
        // the bytes are named for what they are (not what zstd or the tar reader made of them)
        Assert.Contains($"its manifest records {image.Layer.Digest}", e.Message);
        Assert.IsType<CheckpointCorruptException>(e.InnerException);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_manifest_that_is_not_the_digest_asked_for_is_refused()
    {
        var (info, image, _, reference) = await PublishedAsync();
        // another, valid image answered for the digest asked for
        var other = CheckpointImageWriter.Write(info, new CheckpointImagePlatform("linux", "arm64"));
        _registry!.AddManifest(image.Repository, image.Manifest.Digest, other.ManifestBytes, OciMediaTypes.ImageManifest, image.Manifest.Digest);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains($"not the {image.Manifest.Digest} asked for", e.Message);
        AssertNothingCommitted();
        Assert.Empty(BlobGets(_registry, image.Layer.Digest)); // refused before any byte of the archive
    }

    [Fact]
    public async Task A_manifest_whose_Docker_Content_Digest_is_not_its_digest_is_refused()
    {
        var (_, image, _, _) = await PublishedAsync();
        var lie = "sha256:" + new string('e', 64);
        _registry!.AddManifest(image.Repository, image.Tag, image.ManifestBytes, OciMediaTypes.ImageManifest, lie);

        var byTag = $"{_registry.Host}/{image.Repository}:{image.Tag}";
        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(byTag, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains(lie, e.Message);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task An_image_that_is_not_a_checkpoint_image_is_refused()
    {
        var registry = await RegistryAsync();
        var plain = TestImage.WithRandomFile(4096);
        foreach (var blob in plain.Blobs) registry.AddBlob("crsc/shop/cart/cart", blob.Content);
        registry.AddManifest("crsc/shop/cart/cart", "20260301T120000Z-00000000", plain.Manifest, TestImage.ManifestMediaType);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher().FetchAsync($"{registry.Host}/crsc/shop/cart/cart@{plain.ManifestDigest}", Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains("not a crsc checkpoint image", e.Message);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_transfer_cut_mid_blob_resumes_with_a_range_request_and_the_whole_is_checked()
    {
        var (info, image, layer, reference) = await PublishedAsync();
        _registry!.TruncateNextBlobs(2, layer.Length / 3);

        var fetched = await Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None);

        Assert.Equal(info.Digest, fetched.Digest);
        Assert.True((await StoreB().VerifyAsync(fetched.Id, CancellationToken.None)).Valid);
        var gets = BlobGets(_registry, image.Layer.Digest);
        Assert.Equal(3, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.Equal($"bytes={layer.Length / 3}-", gets[1].Range); // went on from what it had
        Assert.Equal($"bytes={2 * (layer.Length / 3)}-", gets[2].Range);
    }

    [Fact]
    public async Task A_server_that_never_answers_206_is_read_from_the_start_again()
    {
        var (info, image, layer, reference) = await PublishedAsync(options: new FakeRegistryOptions { IgnoreRange = true });
        _registry!.TruncateNextBlobs(1, layer.Length / 2);

        var fetched = await Fetcher().FetchAsync(reference, null, null, CancellationToken.None);

        Assert.Equal(info.Digest, fetched.Digest);
        Assert.True((await StoreB().VerifyAsync(fetched.Id, CancellationToken.None)).Valid);
        var gets = BlobGets(_registry, image.Layer.Digest);
        Assert.Equal(2, gets.Count);
        Assert.Equal($"bytes={layer.Length / 2}-", gets[1].Range); // asked for the rest, got the whole blob (200)
    }

    [Fact]
    public async Task A_fetch_cancelled_mid_blob_leaves_nothing_behind()
    {
        var (_, _, layer, reference) = await PublishedAsync(CheckpointCompression.None);
        _registry!.TruncateNextBlobs(1, layer.Length / 2);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(received =>
        {
            if (received > 0) cts.Cancel();
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Fetcher().FetchAsync(reference, Puller, progress, cts.Token));

        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_registry_answering_5xx_is_asked_again_with_backoff()
    {
        var (info, image, _, reference) = await PublishedAsync();
        _registry!.FailNext(1, 503, r => r.Path.Contains("/manifests/", StringComparison.Ordinal));
        _registry.FailNext(2, 502, r => r.Path.EndsWith("/blobs/" + image.Layer.Digest, StringComparison.Ordinal));

        var fetched = await Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None);

        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Equal(3, BlobGets(_registry, image.Layer.Digest).Count);
    }

    [Theory]
    [InlineData(0, " failed: ")] // the connection dropped
    [InlineData(503, ": answered 503 Service Unavailable (HTTP 503 UNKNOWN: injected failure (503))")]
    public async Task A_registry_that_keeps_failing_is_given_up_on_after_the_attempts_naming_the_request(int code, string said)
    {
        var (_, image, _, reference) = await PublishedAsync();
        _registry!.FailNext(10, code, r => r.Path.Contains("/manifests/", StringComparison.Ordinal));

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(Options() with { MaxAttempts = 3 }).FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.False(e.Refused);

        Assert.Contains($"{reference}: getting the manifest: gave up after 3 attempts: ", e.Message);
        Assert.Contains($"GET http://{_registry.Host}/v2/{image.Repository}/manifests/{image.Manifest.Digest}{said}", e.Message);
        Assert.IsType<RegistryException>(e.InnerException);
        Assert.Equal(3, _registry.Requests.Count(r => r.Path.Contains("/manifests/", StringComparison.Ordinal)));
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_registry_that_refuses_the_authorization_it_asked_for_is_not_asked_again()
    {
        // anonymous: the token service hands out a token that grants nothing, and the registry refuses it
        var (_, image, _, reference) = await PublishedAsync();

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, null, null, CancellationToken.None));
        Assert.False(e.Refused);

        Assert.Contains("the registry refused the authorization it had asked for: answered 401 Unauthorized", e.Message);
        Assert.Contains("UNAUTHORIZED", e.Message);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, Assert.IsType<RegistryException>(e.InnerException).StatusCode);
        var gets = _registry!.Requests.Where(r => r.Path.Contains("/manifests/", StringComparison.Ordinal)).ToList();
        Assert.Equal([null, "Bearer"], gets.Select(r => r.AuthScheme));
        Assert.Equal(1, _registry.TokensIssued);
        Assert.Empty(BlobGets(_registry, image.Layer.Digest));
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_checkpoint_the_registry_does_not_have_is_named_in_the_error()
    {
        var (_, image, _, _) = await PublishedAsync();
        var missing = $"{_registry!.Host}/{image.Repository}:20260301T000000Z-00000000";

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(missing, Puller, null, CancellationToken.None));
        Assert.False(e.Refused);

        Assert.Equal(missing, e.Image);
        Assert.Contains("MANIFEST_UNKNOWN", e.Message);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_transfer_cut_more_often_than_the_attempts_allow_is_given_up_and_nothing_is_committed()
    {
        var (_, image, layer, reference) = await PublishedAsync();
        _registry!.TruncateNextBlobs(10, layer.Length / 10, abort: true);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(Options() with { MaxAttempts = 3 }).FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.False(e.Refused);

        Assert.Contains("gave up after 3 attempts", e.Message);
        Assert.Equal(3, BlobGets(_registry, image.Layer.Digest).Count);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_blob_redirected_to_another_host_is_refused_unless_that_host_is_allowed()
    {
        var (info, image, _, reference) = await PublishedAsync();
        var registry = _registry!;
        var port = registry.Url.Port;
        var storage = $"localhost:{port}"; // the same server under another name: another host
        registry.RedirectBlobs(d => $"http://{storage}{FakeRegistry.StoragePath(d)}");

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains($"redirected to http://{storage}", e.Message);
        Assert.Contains("refused", e.Message);
        Assert.DoesNotContain(registry.Requests, r => r.Path.StartsWith("/_storage/", StringComparison.Ordinal));
        AssertNothingCommitted();

        // allowed: followed, and the storage host gets no credentials
        var fetched = await Fetcher(Options() with { AllowedRedirectHosts = [storage] }).FetchAsync(reference, Puller, null, CancellationToken.None);
        Assert.Equal(info.Digest, fetched.Digest);
        var stored = Assert.Single(registry.Requests, r => r.Path == FakeRegistry.StoragePath(image.Layer.Digest));
        Assert.Null(stored.AuthScheme);
    }

    [Fact]
    public async Task A_blob_redirected_on_the_same_host_is_followed()
    {
        var (info, image, _, reference) = await PublishedAsync();
        _registry!.RedirectBlobs(FakeRegistry.StoragePath);

        var fetched = await Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None);

        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Contains(_registry.Requests, r => r.Path == FakeRegistry.StoragePath(image.Layer.Digest));
    }

    [Fact]
    public async Task A_manifest_of_another_checkpoint_than_the_one_expected_is_refused_before_the_archive_is_fetched()
    {
        var (info, image, _, reference) = await PublishedAsync();
        var expected = "20260101-000000-" + new string('0', 8);
        Assert.NotEqual(info.Id, expected);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher().FetchAsync(reference, expected, Puller, null, CancellationToken.None));

        Assert.True(e.Refused);
        Assert.Contains($"its manifest is of checkpoint {info.Id}, not of the {expected} expected", e.Message);
        Assert.Empty(BlobGets(_registry!, image.Layer.Digest));
        AssertNothingCommitted();

        // the id it has: fetched
        Assert.Equal(info.Id, (await Fetcher().FetchAsync(reference, info.Id, Puller, null, CancellationToken.None)).Id);
    }

    [Fact]
    public async Task A_manifest_whose_MAC_does_not_verify_is_refused_before_the_archive_is_fetched()
    {
        var info = await TakeAsync();
        var registry = await RegistryAsync();
        // the manifest changed after node A signed it: another pod named, the MAC kept
        var forged = CheckpointImageWriter.Write(info with { PodName = "someone-else" }, Amd64);
        var reference = Publish(registry, forged, await StoredBytesAsync(info));

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains("invalid MAC", e.Message);
        Assert.Empty(BlobGets(registry, forged.Layer.Digest));
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_manifest_without_a_MAC_is_not_a_checkpoint_image_crsc_takes()
    {
        var info = await TakeAsync();
        var registry = await RegistryAsync();
        var unsigned = CheckpointImageWriter.Write(info with { Mac = null, MacKeyId = null }, Amd64);
        var reference = Publish(registry, unsigned, await StoredBytesAsync(info));

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains(CheckpointImageWriter.ManifestAnnotation, e.Message);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_checkpoint_of_a_node_sharing_no_key_is_refused_or_recorded_as_of_another_key()
    {
        var (info, _, _, reference) = await PublishedAsync();

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(sharedKey: false).FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);
        Assert.Contains($"signed by key id {_a.Key.Id}", e.Message);
        AssertNothingCommitted();

        var fetched = await Fetcher(Options() with { RequireVerified = false }, sharedKey: false).FetchAsync(reference, Puller, null, CancellationToken.None);
        Assert.Equal(CheckpointAuthenticity.OtherKey, fetched.Authenticity);
        Assert.Equal(CheckpointAuthenticity.OtherKey, StoreB().Get(info.Id)!.Authenticity);
        // and B never serves it
        Assert.Equal("DENIED", new StoreImageRegistry(StoreB(), Amd64).FindManifest("crsc/shop/cart/cart", info.Id).Error!.Code);
    }

    [Fact]
    public async Task An_archive_with_a_path_that_escapes_is_refused_by_the_store_even_when_its_MAC_verifies()
    {
        var archive = new TestArchive();
        archive.Extra.Add(t => TestArchive.File(t, "../../etc/cron.d/evil", Encoding.ASCII.GetBytes("* * * * * root sh\n")));
        var tar = archive.Build();
        // a signed manifest for it, as a node holding the shared key would write (no store ingests such an archive)
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));
        var doc = new ManifestDocument
        {
            FormatVersion = ManifestDocument.CurrentFormatVersion,
            Id = "20260301T120000Z-0badc0de",
            Namespace = "shop",
            Workload = "cart",
            Container = "cart",
            NodeName = "node-a",
            Archive = new ManifestArchive { Compression = "none", Digest = digest, Size = tar.Length, UncompressedDigest = digest, UncompressedSize = tar.Length },
            Source = new ManifestSource { ImageName = "registry.example/shop/cart:1.4.2", PodNamespace = "shop" },
            CreatedAt = _a.Time.GetUtcNow(),
            CrscVersion = "0.1.0-test",
        };
        Crsc.Storage.Manifests.Sign(doc, _a.Key);
        var image = CheckpointImageWriter.Write(Crsc.Storage.Manifests.ToInfo(doc, "/nonexistent", _a.Key), Amd64);
        var registry = await RegistryAsync();
        var reference = Publish(registry, image, tar);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.IsType<ArchiveRejectedException>(e.InnerException);
        Assert.Contains("evil", e.Message);
        Assert.Single(BlobGets(registry, image.Layer.Digest)); // it was fetched, and the store's validation refused it
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_blob_longer_than_the_manifest_says_is_refused()
    {
        var (_, image, layer, reference) = await PublishedAsync();
        _registry!.AddBlobAs(image.Repository, image.Layer.Digest, [.. layer, .. new byte[1024]]);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() => Fetcher().FetchAsync(reference, Puller, null, CancellationToken.None));
        Assert.True(e.Refused);

        Assert.Contains($"{layer.Length + 1024} bytes", e.Message);
        AssertNothingCommitted();
    }

    [Fact]
    public async Task A_reference_without_a_registry_host_is_refused()
    {
        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher().FetchAsync("crsc/shop/cart/cart:20260301T120000Z-0badc0de", null, null, CancellationToken.None));
        Assert.True(e.Refused);
        Assert.Contains("no registry host", e.Message);
    }
}
