using Crsc.Controllers.Health;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Crsc.Tests.Cli;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Images;

/// <summary>
/// <see cref="CheckpointImageFetcher"/> against crsc's own embedded endpoint rather than a fake registry: node A's real
/// store served by a real <see cref="ImageEndpoint"/> on loopback (pull tokens of A's key), node B's real store in another
/// directory fetching by the reference A's publisher hands out. With the shared key (<c>security.keySecret</c>: both
/// key files hold the same key) B gets the same checkpoint and serves it in turn; a pull the endpoint refuses, an image
/// A does not have, a transfer A's endpoint cuts (a corrupt archive) and a B without the shared key all fail naming
/// the image and leave B's store as it was.
/// </summary>
public sealed class CheckpointFetchFromPeerTests : IAsyncLifetime
{
    private const string Repo = "crsc/shop/cart/cart";
    // the store's lock file (DiskCheckpointStore.LockFileName, internal to Crsc.Storage): the one file an empty store has
    private const string StoreLockFile = ".crsc-store.lock";
    private static readonly CheckpointImagePlatform Amd64 = new("linux", "amd64");
    private readonly CliStore _a = new();
    private readonly CliStore _b = new();
    private readonly CliStore _c = new();
    private readonly List<ImageEndpoint> _endpoints = [];
    private readonly List<IDisposable> _disposables = [];
    private DiskCheckpointStore _storeA = null!;
    private ImageEndpoint _endpointA = null!;
    private StoreImageRegistry _registryA = null!;
    private PullTokens _tokensA = null!;

    public async Task InitializeAsync()
    {
        _storeA = _a.Open();
        _disposables.Add(_storeA);
        _registryA = new StoreImageRegistry(_storeA, Amd64);
        _tokensA = new PullTokens(_a.Key);
        _endpointA = await ServeAsync(_registryA, _tokensA);
    }

    public async Task DisposeAsync()
    {
        foreach (var endpoint in _endpoints)
        {
            await endpoint.StopAsync(CancellationToken.None);
            await endpoint.DisposeAsync();
        }
        for (var i = _disposables.Count - 1; i >= 0; i--) _disposables[i].Dispose();
        _a.Dispose();
        _b.Dispose();
        _c.Dispose();
    }

    /// <summary>A node's endpoint on 127.0.0.1 with a port of the system's choosing.</summary>
    private async Task<ImageEndpoint> ServeAsync(StoreImageRegistry registry, PullTokens tokens)
    {
        var endpoint = new ImageEndpoint("127.0.0.1:0", registry, tokens, null, new HealthRegistry(TimeProvider.System),
            NullLogger<ImageEndpoint>.Instance);
        _endpoints.Add(endpoint);
        await endpoint.StartAsync(CancellationToken.None);
        Assert.True(endpoint.Serving);
        return endpoint;
    }

    /// <summary>The reference a node's reconciler gets for <paramref name="checkpoint"/>: what its publisher hands out
    /// while its endpoint serves, advertised at the address the endpoint listens on.</summary>
    private static async Task<string> PublishedAsync(ImageEndpoint endpoint, StoreImageRegistry registry, CheckpointInfo checkpoint)
    {
        var advertise = new Uri(endpoint.Addresses.Single()).Authority;
        var reference = await new ServingImagePublisher(endpoint, new EmbeddedImagePublisher(registry, advertise))
            .PublishAsync(checkpoint, CancellationToken.None);
        Assert.NotNull(reference);
        return reference;
    }

    /// <summary>
    /// Opens the store of <paramref name="node"/>; with <paramref name="sharedKey"/>, its key file first gets A's key, as
    /// <see cref="NodeKeySharing"/> writes the Secret's key into it. Otherwise the node makes a key of its own.
    /// </summary>
    private DiskCheckpointStore Node(CliStore node, bool sharedKey = true)
    {
        if (sharedKey)
        {
            var keyPath = NodeKey.PathIn(node.StateDir);
            var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Directory.CreateDirectory(node.StateDir, mode);
            Directory.CreateDirectory(Path.GetDirectoryName(keyPath)!, mode);
            NodeKey.Store(_a.Key, keyPath);
            Assert.Equal(_a.Key.Id, node.Key.Id);
        }
        else
        {
            Assert.NotEqual(_a.Key.Id, node.Key.Id);
        }
        var store = node.Open();
        _disposables.Add(store);
        return store;
    }

    private CheckpointImageFetcher Fetcher(DiskCheckpointStore store, CheckpointFetchOptions? options = null)
    {
        var fetcher = new CheckpointImageFetcher(store, options ?? new CheckpointFetchOptions
        {
            Insecure = true,
            RetryInitialDelay = TimeSpan.Zero,
            RetryMaxDelay = TimeSpan.Zero,
            MaxAttempts = 2,
        });
        _disposables.Add(fetcher);
        return fetcher;
    }

    /// <summary>No checkpoint, no archive, manifest or temp file under the checkpoint directory, nothing in staging.</summary>
    private static void AssertNothingCommitted(CliStore node, DiskCheckpointStore store)
    {
        Assert.Empty(store.List());
        var files = Directory.EnumerateFiles(node.CheckpointDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(node.CheckpointDir, f))
            .Where(f => f != StoreLockFile)
            .ToList();
        Assert.Empty(files);
        Assert.Empty(Directory.EnumerateFileSystemEntries(store.StagingDirectory));
    }

    [Theory]
    [InlineData(CheckpointCompression.Zstd)]
    [InlineData(CheckpointCompression.None)]
    public async Task A_checkpoint_served_by_node_A_endpoint_is_fetched_into_node_B_store_and_B_serves_it_in_turn(
        CheckpointCompression compression)
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart", compression);
        var reference = await PublishedAsync(_endpointA, _registryA, info);
        var imageA = _registryA.ImageOf(info);
        Assert.EndsWith($"/{Repo}@{imageA.Manifest.Digest}", reference);
        var storeB = Node(_b);
        var received = new List<long>();

        var fetched = await Fetcher(storeB).FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(_tokensA, Repo),
            new Received(received), CancellationToken.None);

        Assert.Equal(info.Id, fetched.Id);
        Assert.Equal(info.Digest, fetched.Digest);
        Assert.Equal(info.Size, fetched.Size);
        Assert.Equal(info.UncompressedDigest, fetched.UncompressedDigest);
        Assert.Equal(compression, fetched.Compression);
        Assert.Equal(CheckpointAuthenticity.Verified, fetched.Authenticity);
        Assert.Equal(fetched, storeB.Get(info.Id));
        Assert.StartsWith(_b.CheckpointDir, fetched.ArchivePath, StringComparison.Ordinal);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), await File.ReadAllBytesAsync(fetched.ArchivePath));
        Assert.True((await storeB.VerifyAsync(info.Id, CancellationToken.None)).Valid);
        Assert.Equal(info.Size, received[^1]);

        // B serves it as the same image: its own registry view gives the manifest digest A's reference names
        var registryB = new StoreImageRegistry(storeB, Amd64);
        Assert.Equal(imageA.Manifest.Digest, registryB.ImageOf(fetched).Manifest.Digest);
        Assert.Equal(imageA.ManifestBytes, registryB.ImageOf(fetched).ManifestBytes);
        // and over its own endpoint: node C (the shared key too) fetches it from B with a token of the shared key
        var endpointB = await ServeAsync(registryB, new PullTokens(_b.Key));
        var fromB = await PublishedAsync(endpointB, registryB, fetched);
        Assert.NotEqual(reference, fromB);
        var storeC = Node(_c);
        var again = await Fetcher(storeC).FetchAsync(fromB, CheckpointImageFetcher.PeerCredentials(new PullTokens(_c.Key), Repo), null,
            CancellationToken.None);
        Assert.Equal(info.Digest, again.Digest);
        Assert.Equal(CheckpointAuthenticity.Verified, again.Authenticity);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), await File.ReadAllBytesAsync(again.ArchivePath));
    }

    public static TheoryData<string> RefusedCredentials => new()
    {
        "none",
        "garbage",
        "other key",
        "other repository",
    };

    [Theory]
    [MemberData(nameof(RefusedCredentials))]
    public async Task A_pull_node_A_endpoint_refuses_fails_naming_the_image_and_commits_nothing_in_node_B(string credentials)
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedAsync(_endpointA, _registryA, info);
        var storeB = Node(_b);
        var (given, status, why) = credentials switch
        {
            "none" => (null, 401, "the registry wants basic authentication"),
            "garbage" => (new RegistryCredentials(PullTokens.UserName, "crsc1.AAAA.BBBB"), 401, "not a crsc pull token"),
            "other key" => (CheckpointImageFetcher.PeerCredentials(new PullTokens(NodeKey.Generate()), Repo), 401,
                "not made with this cluster's crsc key"),
            "other repository" => (CheckpointImageFetcher.PeerCredentials(_tokensA, "crsc/shop/other/cart"), 403,
                "covers repository 'crsc/shop/other/cart'"),
            _ => throw new ArgumentOutOfRangeException(nameof(credentials)),
        };

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(storeB).FetchAsync(reference, given, null, CancellationToken.None));

        Assert.Equal(reference, e.Image);
        Assert.Contains(reference, e.Message);
        Assert.Contains($"HTTP {status}", e.Message);
        Assert.Contains(why, e.Message);
        AssertNothingCommitted(_b, storeB);
    }

    [Fact]
    public async Task A_checkpoint_node_A_does_not_have_is_refused_naming_it_and_nothing_is_committed()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedAsync(_endpointA, _registryA, info);
        var host = new Uri(_endpointA.Addresses.Single()).Authority;
        var storeB = Node(_b);
        var credentials = CheckpointImageFetcher.PeerCredentials(_tokensA, Repo);

        foreach (var (missing, code) in new[]
        {
            ($"{host}/{Repo}:20990101T000000Z-00000000", "MANIFEST_UNKNOWN"),                           // an id A never took
            ($"{host}/{Repo}@sha256:{new string('0', 64)}", "MANIFEST_UNKNOWN"),                        // a digest of nothing
            (reference.Replace("/shop/cart/cart@", "/shop/gone/cart@", StringComparison.Ordinal), "NAME_UNKNOWN"), // a workload A has none of
        })
        {
            var credentialsFor = missing.Contains("/gone/", StringComparison.Ordinal)
                ? CheckpointImageFetcher.PeerCredentials(_tokensA, "crsc/shop/gone/cart") : credentials;
            var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
                Fetcher(storeB).FetchAsync(missing, credentialsFor, null, CancellationToken.None));
            Assert.Equal(missing, e.Image);
            Assert.Contains(missing, e.Message);
            Assert.Contains($"HTTP 404 {code}", e.Message);
            AssertNothingCommitted(_b, storeB);
        }
        // the same fetcher and store take the one A has
        Assert.Equal(info.Digest, (await Fetcher(storeB).FetchAsync(reference, credentials, null, CancellationToken.None)).Digest);
    }

    [Fact]
    public async Task An_archive_corrupted_on_node_A_is_cut_off_by_its_endpoint_and_leaves_nothing_in_node_B()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedAsync(_endpointA, _registryA, info);
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = fs.Length - 100;
            var b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0xff));
        }
        var storeB = Node(_b);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(storeB).FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(_tokensA, Repo), null, CancellationToken.None));

        Assert.Equal(reference, e.Image);
        Assert.Contains($"blob {info.Digest}", e.Message); // B cannot tell why: the endpoint cut the transfer, each try
        AssertNothingCommitted(_b, storeB);
    }

    [Fact]
    public async Task A_node_B_without_the_shared_key_refuses_node_A_checkpoint_unless_told_to_keep_it_as_of_another_key()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedAsync(_endpointA, _registryA, info);
        var storeB = Node(_b, sharedKey: false);
        // B cannot make a token A accepts: the token is A's (as `crsc image-token` on A makes one)
        var credentials = CheckpointImageFetcher.PeerCredentials(_tokensA, Repo);

        var e = await Assert.ThrowsAsync<CheckpointFetchException>(() =>
            Fetcher(storeB).FetchAsync(reference, credentials, null, CancellationToken.None));

        Assert.Equal(reference, e.Image);
        Assert.Contains($"signed by key id {_a.Key.Id}, not by this node's key", e.Message);
        AssertNothingCommitted(_b, storeB);

        // asked to, B keeps it, recorded as of another key, and never serves it
        var kept = await Fetcher(storeB, new CheckpointFetchOptions { Insecure = true, RequireVerified = false, MaxAttempts = 1 })
            .FetchAsync(reference, credentials, null, CancellationToken.None);
        Assert.Equal(info.Digest, kept.Digest);
        Assert.Equal(CheckpointAuthenticity.OtherKey, storeB.Get(info.Id)!.Authenticity);
        Assert.Equal("DENIED", new StoreImageRegistry(storeB, Amd64).FindManifest(Repo, info.Id).Error!.Code);
    }
}

/// <summary>Records progress reports as they come (Progress&lt;T&gt; would post them later, on the thread pool).</summary>
file sealed class Received(List<long> reports) : IProgress<long>
{
    public void Report(long value)
    {
        lock (reports) reports.Add(value);
    }
}
