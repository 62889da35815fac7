using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Crsc.Tests.Cli;
using Crsc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Images;

/// <summary>
/// <see cref="CheckpointTransfer"/>, the daemon's <see cref="ICheckpointTransfer"/>: node A's real store served by a real
/// <see cref="ImageEndpoint"/> on loopback, node B's real store (the shared key) with its own endpoint, and the transfer
/// of B fetching A's checkpoint images through a transport that records every request it sends.
/// </summary>
public sealed class CheckpointTransferTests : IAsyncLifetime
{
    private const string Repo = "crsc/shop/cart/cart";
    private const string StoreLockFile = ".crsc-store.lock";
    private readonly CliStore _a = new();
    private readonly CliStore _b = new();
    private readonly CliStore _x = new();
    private readonly List<ImageEndpoint> _endpoints = [];
    private readonly List<IDisposable> _disposables = [];
    private readonly TransferTraffic _traffic = new();
    private DiskCheckpointStore _storeA = null!;
    private StoreImageRegistry _registryA = null!;
    private ImageEndpoint _endpointA = null!;
    private DiskCheckpointStore _storeB = null!;
    private StoreImageRegistry _registryB = null!;
    private ImageEndpoint _endpointB = null!;

    public async Task InitializeAsync()
    {
        _storeA = _a.Open();
        _disposables.Add(_storeA);
        _registryA = new StoreImageRegistry(_storeA);
        _endpointA = await ServeAsync(_registryA, new PullTokens(_a.Key));
        _storeB = SharedKeyNode(_b);
        _registryB = new StoreImageRegistry(_storeB);
        _endpointB = await ServeAsync(_registryB, new PullTokens(_b.Key));
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
        _x.Dispose();
    }

    private async Task<ImageEndpoint> ServeAsync(StoreImageRegistry registry, PullTokens tokens)
    {
        var endpoint = new ImageEndpoint("127.0.0.1:0", registry, tokens, null, new HealthRegistry(TimeProvider.System),
            NullLogger<ImageEndpoint>.Instance);
        _endpoints.Add(endpoint);
        await endpoint.StartAsync(CancellationToken.None);
        Assert.True(endpoint.Serving);
        return endpoint;
    }

    private static string Authority(ImageEndpoint endpoint) => new Uri(endpoint.Addresses.Single()).Authority;

    /// <summary>A node's store whose key file holds A's key (security.keySecret), in directories private to the test (0700).</summary>
    private DiskCheckpointStore SharedKeyNode(CliStore node)
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.CreateDirectory(node.StateDir, mode);
        Directory.CreateDirectory(Path.GetDirectoryName(NodeKey.PathIn(node.StateDir))!, mode);
        NodeKey.Store(_a.Key, NodeKey.PathIn(node.StateDir));
        Assert.Equal(_a.Key.Id, node.Key.Id);
        var store = node.Open();
        _disposables.Add(store);
        return store;
    }

    /// <summary>B's transfer: B's key for tokens, B's endpoint named in what it returns, no waiting between retries.</summary>
    private CheckpointTransfer TransferB(Func<CheckpointTransferOptions, CheckpointTransferOptions>? configure = null, bool endpoint = true) =>
        new(_storeB, _registryB, new PullTokens(_b.Key), endpoint ? _endpointB : null,
            (configure ?? (o => o))(new CheckpointTransferOptions
            {
                LocalAdvertise = endpoint ? Authority(_endpointB) : "",
                Fetch = new CheckpointFetchOptions { RetryInitialDelay = TimeSpan.Zero, RetryMaxDelay = TimeSpan.Zero, MaxAttempts = 2 },
            }),
            TimeProvider.System, NullLoggerFactory.Instance, () => new Recorder(_traffic));

    private async Task<string> PublishedByAAsync(CheckpointInfo info)
    {
        var reference = await new EmbeddedImagePublisher(_registryA, Authority(_endpointA)).PublishAsync(info, CancellationToken.None);
        Assert.NotNull(reference);
        return reference;
    }

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

    [Fact]
    public async Task A_checkpoint_fetched_from_a_peer_is_in_the_target_store_and_served_by_the_targets_endpoint()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        var received = new List<long>();

        var result = await TransferB().FetchAsync(new CheckpointTransferRequest(reference, FromPeer: true), new Received(received),
            CancellationToken.None);

        Assert.False(result.AlreadyPresent);
        Assert.Equal(info.Id, result.CheckpointId);
        Assert.Equal(info.Size, result.SizeBytes);
        Assert.Equal(info.Size, received[^1]);
        var stored = _storeB.Get(info.Id);
        Assert.NotNull(stored);
        Assert.Equal(info.Digest, stored.Digest);
        Assert.Equal(CheckpointAuthenticity.Verified, stored.Authenticity);
        // the peer was asked with a crsc pull token (Basic, user crsc, once it asked for it): the manifest once, the blob once
        Assert.All(_traffic.Requests, r => Assert.StartsWith($"GET http://{Authority(_endpointA)}/v2/{Repo}/", r.Line));
        Assert.Equal(["Basic", "Basic"], _traffic.Requests.Where(r => r.Authorization is not null).Select(r => r.Authorization!.Split(' ')[0]));
        Assert.Single(_traffic.Requests, r => r.Line.Contains("/manifests/", StringComparison.Ordinal) && r.Authorization is not null);
        Assert.Equal(1, _traffic.Blobs);

        // the local reference names B's endpoint, and B's endpoint serves that very manifest
        var digest = _registryB.ImageOf(stored).Manifest.Digest;
        Assert.Equal($"{Authority(_endpointB)}/{Repo}@{digest}", result.LocalImageReference);
        using var http = new HttpClient { BaseAddress = new Uri(_endpointB.Addresses.Single()) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", new PullTokens(_b.Key).Mint(Repo));
        using var manifest = await http.GetAsync($"/v2/{Repo}/manifests/{digest}");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        using var blob = await http.GetAsync($"/v2/{Repo}/blobs/{info.Digest}");
        Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), await blob.Content.ReadAsByteArrayAsync());
    }

    /// <summary>
    /// A fetched archive holds another node's process memory: it lands as the store's own do, directories 0700 and
    /// files 0600, and a local user without privileges reads none of it even where the path above the store lets it pass.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_fetched_from_a_peer_is_private_to_root_and_an_unprivileged_user_reads_none_of_it()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var result = await TransferB().FetchAsync(new CheckpointTransferRequest(await PublishedByAAsync(info), FromPeer: true), null,
            CancellationToken.None);
        var stored = _storeB.Get(result.CheckpointId)!;

        const UnixFileMode Dir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        const UnixFileMode File0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var checkpointDir = Path.GetDirectoryName(stored.ArchivePath)!;
        for (var d = checkpointDir; d.Length >= _b.CheckpointDir.Length; d = Path.GetDirectoryName(d)!)
            Assert.True(File.GetUnixFileMode(d) == Dir, $"{d} is {File.GetUnixFileMode(d)}");
        var files = Directory.EnumerateFiles(checkpointDir, "*", SearchOption.AllDirectories).ToList();
        Assert.Contains(stored.ArchivePath, files);
        Assert.All(files, f => Assert.True(File.GetUnixFileMode(f) == File0600, $"{f} is {File.GetUnixFileMode(f)}"));

        // the test's own directory above the store may be passed through (as /var/lib is): only the store's modes keep nobody out
        File.SetUnixFileMode(_b.Dir.Path, Dir | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        foreach (var (command, path) in new[] { ("cat", stored.ArchivePath), ("ls", _b.CheckpointDir), ("ls", checkpointDir) })
        {
            var (code, err) = await AsNobodyAsync(command, path);
            Assert.True(code != 0, $"nobody could {command} {path}");
            Assert.Contains("Permission denied", err);
        }
    }

    private static async Task<(int Code, string Err)> AsNobodyAsync(string command, string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--reuid=nobody", "--regid=nogroup", "--clear-groups", command, path]) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        await output;
        return (p.ExitCode, await err);
    }

    [Fact]
    public async Task A_checkpoint_the_store_has_by_its_expected_id_is_not_fetched_again_and_no_request_is_made()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        var transfer = TransferB();
        await transfer.FetchAsync(new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None);
        _traffic.Clear();
        // A's endpoint gone: a request would fail
        await _endpointA.StopAsync(CancellationToken.None);

        var result = await transfer.FetchAsync(new CheckpointTransferRequest(reference, FromPeer: true, info.Id), null, CancellationToken.None);

        Assert.True(result.AlreadyPresent);
        Assert.Equal(info.Id, result.CheckpointId);
        Assert.Equal(info.Size, result.SizeBytes);
        Assert.StartsWith($"{Authority(_endpointB)}/{Repo}@sha256:", result.LocalImageReference);
        Assert.Empty(_traffic.Requests);
    }

    [Fact]
    public async Task A_checkpoint_the_store_has_by_the_id_its_manifest_names_is_not_fetched_again()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        // B got it another way (a fetch of its own, before the transfer was asked)
        using (var fetcher = new CheckpointImageFetcher(_storeB, new CheckpointFetchOptions { Insecure = true }))
            await fetcher.FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(new PullTokens(_a.Key), Repo), null, CancellationToken.None);

        var result = await TransferB().FetchAsync(new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None);

        Assert.True(result.AlreadyPresent);
        Assert.Equal(info.Id, result.CheckpointId);
        Assert.Equal(0, _traffic.Blobs); // the manifest was read to learn the id; the archive was not
        Assert.Single(_traffic.Requests, r => r.Line.Contains("/manifests/", StringComparison.Ordinal) && r.Authorization is not null);
    }

    [Fact]
    public async Task A_manifest_naming_another_checkpoint_than_the_one_expected_is_refused_and_nothing_is_stored()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var other = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        Assert.NotEqual(info.Id, other.Id);
        var reference = await PublishedByAAsync(info);

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true, other.Id), null, CancellationToken.None));

        Assert.True(e.Refused);
        Assert.Equal(reference, e.ImageReference);
        Assert.Contains(reference, e.Message);
        Assert.Contains($"its manifest is of checkpoint {info.Id}, not of the {other.Id} expected", e.Message);
        Assert.Equal(0, _traffic.Blobs);
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task A_checkpoint_signed_with_another_key_than_this_nodes_is_refused_and_nothing_is_stored()
    {
        // X's store signs with a key of its own; its endpoint takes the cluster's tokens (so the fetch gets to the MAC)
        var storeX = _x.Open();
        _disposables.Add(storeX);
        Assert.NotEqual(_a.Key.Id, _x.Key.Id);
        var registryX = new StoreImageRegistry(storeX);
        var endpointX = await ServeAsync(registryX, new PullTokens(_a.Key));
        var info = await CliStore.AddAsync(storeX, "shop", "cart", "cart");
        var reference = await new EmbeddedImagePublisher(registryX, Authority(endpointX)).PublishAsync(info, CancellationToken.None);

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference!, FromPeer: true), null, CancellationToken.None));

        Assert.True(e.Refused);
        Assert.Contains($"fetching checkpoint image {reference}", e.Message);
        Assert.Contains($"signed by key id {_x.Key.Id}, not by this node's key", e.Message);
        Assert.IsType<CheckpointFetchException>(e.InnerException);
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task A_peer_that_refuses_this_nodes_tokens_is_not_a_refusal_and_the_message_names_the_shared_key_setting()
    {
        // the peer's endpoint takes tokens of another key (the nodes share none): 401 to every token B makes
        var endpoint = await ServeAsync(_registryA, new PullTokens(_x.Key));
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await new EmbeddedImagePublisher(_registryA, Authority(endpoint)).PublishAsync(info, CancellationToken.None);

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference!, FromPeer: true), null, CancellationToken.None));

        Assert.False(e.Refused);
        Assert.Contains("401", e.Message);
        Assert.Contains("set security.keySecret to the same Secret on every node", e.Message);
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task A_peer_that_cannot_be_reached_is_not_a_refusal_and_the_message_names_the_image()
    {
        int port;
        using (var closed = new TcpListener(IPAddress.Loopback, 0))
        {
            closed.Start();
            port = ((IPEndPoint)closed.LocalEndpoint).Port;
        }
        var reference = $"127.0.0.1:{port}/{Repo}@sha256:{new string('a', 64)}";

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));

        Assert.False(e.Refused);
        Assert.Contains($"fetching checkpoint image {reference}", e.Message);
        Assert.Contains("gave up after 2 attempts", e.Message);
        Assert.Contains("refused", e.Message); // the connection's error, as the fetcher says it
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task A_transfer_the_peer_keeps_cutting_off_is_not_a_refusal_and_nothing_is_stored()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        // A's archive damaged on its disk: A's endpoint finds out at the end of the blob and cuts every transfer of it
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = fs.Length - 100;
            var b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0xff));
        }

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));

        Assert.False(e.Refused);
        Assert.Contains($"fetching checkpoint image {reference}", e.Message);
        Assert.Contains($"blob {info.Digest}: gave up after 2 attempts", e.Message);
        Assert.Equal(2, _traffic.Blobs);
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task A_checkpoint_another_import_is_bringing_in_is_not_a_refusal_and_the_other_import_completes()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        // another fetch into B's store (not through the transfer) holds the import of that checkpoint while its blob comes
        var other = new TransferTraffic();
        other.HoldBlobs();
        using var fetcher = new CheckpointImageFetcher(_storeB, new CheckpointFetchOptions { Insecure = true }, null, null, new Recorder(other));
        var first = fetcher.FetchAsync(reference, CheckpointImageFetcher.PeerCredentials(new PullTokens(_a.Key), Repo), null, CancellationToken.None);
        await other.BlobStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));

        // nothing is wrong with what A sent: a later pass finds it in the store
        Assert.False(e.Refused);
        Assert.False(Assert.IsType<CheckpointFetchException>(e.InnerException).Refused);
        other.ReleaseBlobs();
        Assert.Equal(info.Id, (await first).Id);
        var result = await TransferB().FetchAsync(new CheckpointTransferRequest(reference, FromPeer: true, info.Id), null, CancellationToken.None);
        Assert.True(result.AlreadyPresent);
    }

    [Theory]
    [InlineData("other-key", true)]
    [InlineData("other-key", false)]
    [InlineData("unsigned", true)]
    [InlineData("unsigned", false)]
    public async Task A_checkpoint_the_store_has_but_this_nodes_key_does_not_vouch_for_is_refused_and_kept(string copy, bool knowsId)
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        // B holds the same checkpoint (same id, same archive), its manifest signed with X's key or not at all (copied in by hand)
        var manifest = CopyIntoB(info);
        var json = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(manifest))!.AsObject();
        if (copy == "unsigned")
        {
            json.Remove("mac");
            json.Remove("macKeyId");
        }
        else json["macKeyId"] = _x.Key.Id;
        await File.WriteAllTextAsync(manifest, json.ToJsonString());
        var held = _storeB.Get(info.Id);
        Assert.NotNull(held);
        Assert.Equal(copy == "unsigned" ? CheckpointAuthenticity.Unsigned : CheckpointAuthenticity.OtherKey, held.Authenticity);

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true, knowsId ? info.Id : null), null, CancellationToken.None));

        // a restore would refuse that copy (ArchiveNotAuthentic), and nothing brings it again while it is there
        Assert.True(e.Refused);
        Assert.Contains($"this node's store holds checkpoint {info.Id} already", e.Message);
        // the store's copy is left as it was: crsc did not make it
        Assert.Equal(held.Authenticity, _storeB.Get(info.Id)!.Authenticity);
        Assert.Equal(0, _traffic.Blobs);
    }

    /// <summary>Copies A's committed checkpoint files into B's store at the same place; returns B's manifest path.</summary>
    private string CopyIntoB(CheckpointInfo info)
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        var dir = Path.GetDirectoryName(info.ArchivePath)!;
        var target = Path.Join(_b.CheckpointDir, Path.GetRelativePath(_a.CheckpointDir, dir));
        var path = _b.CheckpointDir;
        foreach (var part in Path.GetRelativePath(_a.CheckpointDir, dir).Split('/'))
            Directory.CreateDirectory(path = Path.Join(path, part), mode);
        File.Copy(info.ArchivePath, Path.Join(target, Path.GetFileName(info.ArchivePath)));
        File.Copy(Path.Join(dir, info.Id + ".json"), Path.Join(target, info.Id + ".json"));
        return Path.Join(target, info.Id + ".json");
    }

    [Fact]
    public async Task A_registry_that_is_not_the_configured_one_is_refused_before_anything_is_sent_to_it()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        using var elsewhere = new TcpListener(IPAddress.Loopback, 0);
        elsewhere.Start();
        var host = $"127.0.0.1:{((IPEndPoint)elsewhere.LocalEndpoint).Port}";
        var reference = $"{host}/{Repo}:{info.Id}";
        var authFile = AuthFile(host, "someone", "secret");
        var transfer = TransferB(o => o with
        {
            Registry = RegistryLocation.Parse("registry.example:5000/team"), RegistryInsecure = true, RegistryAuthFile = authFile,
        });

        // bounded: a fetch that went there would wait for an answer that never comes
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => transfer.FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: false), null, bound.Token));

        Assert.True(e.Refused);
        Assert.Contains($"{host} is not the configured registry registry.example:5000 (images.registry)", e.Message);
        Assert.Empty(_traffic.Requests);
        Assert.False(elsewhere.Pending());
        AssertNothingCommitted(_b, _storeB);

        // no registry configured at all: the same
        e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: false), null, bound.Token));
        Assert.True(e.Refused);
        Assert.Contains("no registry is configured (images.registry)", e.Message);
        Assert.Empty(_traffic.Requests);
        Assert.False(elsewhere.Pending());
    }

    [Fact]
    public async Task From_the_configured_registry_the_fetch_carries_its_credentials_and_crsc_tokens_never_go_there()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        // A's endpoint plays the registry: its password is a pull token, as a registry's would be its own secret
        var host = Authority(_endpointA);
        var reference = $"{host}/{Repo}:{info.Id}";
        // a token of a lifetime of its own: not one the transfer would mint for a peer
        var password = new PullTokens(_a.Key).Mint(Repo, TimeSpan.FromMinutes(17));
        var transfer = TransferB(o => o with
        {
            Registry = RegistryLocation.Parse(host + "/crsc"), RegistryInsecure = true,
            RegistryAuthFile = AuthFile(host, PullTokens.UserName, password),
        });

        // as a peer: the registry gets no crsc token
        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => transfer.FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));
        Assert.True(e.Refused);
        Assert.Contains($"{host} is the configured registry (images.registry), which gets no crsc pull token", e.Message);
        Assert.Empty(_traffic.Requests);

        var result = await transfer.FetchAsync(new CheckpointTransferRequest(reference, FromPeer: false, info.Id), null, CancellationToken.None);

        Assert.False(result.AlreadyPresent);
        Assert.Equal(info.Digest, _storeB.Get(info.Id)!.Digest);
        Assert.StartsWith($"{Authority(_endpointB)}/{Repo}@sha256:", result.LocalImageReference);
        // the auth file's credentials, once the registry asked for them (Basic: the registry's challenge)
        var basic = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{PullTokens.UserName}:{password}"));
        Assert.Equal([basic, basic], _traffic.Requests.Where(r => r.Authorization is not null).Select(r => r.Authorization));
    }

    /// <summary>A docker-config auth file (0600) with one entry.</summary>
    private string AuthFile(string host, string user, string password)
    {
        var path = _b.Dir.Combine("auth.json");
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}"));
        using (var f = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
            f.Write(System.Text.Encoding.UTF8.GetBytes("{\"auths\":{\"" + host + "\":{\"auth\":\"" + auth + "\"}}}"));
        return path;
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public async Task Two_transfers_of_one_checkpoint_at_once_fetch_it_once(bool firstKnowsId, bool secondKnowsId)
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        var transfer = TransferB();
        _traffic.HoldBlobs();

        var first = transfer.FetchAsync(new CheckpointTransferRequest(reference, true, firstKnowsId ? info.Id : null), null, CancellationToken.None);
        await _traffic.BlobStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var second = transfer.FetchAsync(new CheckpointTransferRequest(reference, true, secondKnowsId ? info.Id : null), null, CancellationToken.None);
        await Eventually.TrueAsync(() => transfer.Waiting == 1 || second.IsCompleted, "the second transfer waits for the first");
        Assert.False(second.IsCompleted, second.Exception?.ToString());
        _traffic.ReleaseBlobs();
        var results = await Task.WhenAll(first, second);

        Assert.False(results[0].AlreadyPresent);
        Assert.True(results[1].AlreadyPresent);
        Assert.Equal(results[0].LocalImageReference, results[1].LocalImageReference);
        Assert.Equal(info.Id, results[1].CheckpointId);
        Assert.Equal(1, _traffic.Blobs);
        Assert.Equal(0, transfer.Waiting);
        Assert.Single(_storeB.List());
    }

    [Fact]
    public async Task A_node_whose_endpoint_is_not_serving_fetches_nothing_and_says_why()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        await _endpointB.StopAsync(CancellationToken.None);

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => TransferB().FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));

        Assert.False(e.Refused);
        Assert.Contains("this node's image endpoint is not serving", e.Message);
        Assert.Empty(_traffic.Requests);
        AssertNothingCommitted(_b, _storeB);
    }

    [Fact]
    public async Task The_daemon_registers_the_transfer_and_without_images_listen_it_says_restore_from_needs_it()
    {
        var info = await CliStore.AddAsync(_storeA, "shop", "cart", "cart");
        var reference = await PublishedByAAsync(info);
        using var dir = new TempDir("crsc-daemon-transfer-");
        var options = new CrscOptions
        {
            NodeName = "node-b", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            RuntimeEndpoint = "unix://" + dir.Combine("no-runtime.sock"),
            ImagesListen = "",
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        var transfer = app.Services.GetRequiredService<ICheckpointTransfer>();
        Assert.IsType<CheckpointTransfer>(transfer);
        Assert.Same(transfer, app.Services.GetRequiredService<ICheckpointTransfer>());

        var e = await Assert.ThrowsAsync<CheckpointTransferException>(() => transfer.FetchAsync(
            new CheckpointTransferRequest(reference, FromPeer: true), null, CancellationToken.None));

        Assert.True(e.Refused);
        Assert.Contains(reference, e.Message);
        Assert.Contains("restore-from needs images.listen on the target node", e.Message);
        Assert.Empty(app.Services.GetRequiredService<DiskCheckpointStore>().List());
    }
}

/// <summary>What the transfer's fetcher sent, and a gate that holds blob responses back.</summary>
internal sealed class TransferTraffic
{
    private readonly ConcurrentQueue<(string Line, string? Authorization)> _requests = new();
    private TaskCompletionSource? _gate;
    private int _blobs;

    public TaskCompletionSource BlobStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public IReadOnlyList<(string Line, string? Authorization)> Requests => _requests.ToList();
    public int Blobs => Volatile.Read(ref _blobs);

    public void Clear()
    {
        _requests.Clear();
        Interlocked.Exchange(ref _blobs, 0);
    }

    public void HoldBlobs() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    public void ReleaseBlobs() => _gate?.TrySetResult();

    public async Task RecordAsync(HttpRequestMessage request, CancellationToken ct)
    {
        _requests.Enqueue(($"{request.Method} {request.RequestUri}", request.Headers.Authorization?.ToString()));
        if (request.RequestUri?.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal) != true) return;
        Interlocked.Increment(ref _blobs);
        BlobStarted.TrySetResult();
        if (_gate is { } gate) await gate.Task.WaitAsync(ct);
    }
}

file sealed class Recorder(TransferTraffic traffic) : DelegatingHandler(new SocketsHttpHandler { AllowAutoRedirect = false })
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        await traffic.RecordAsync(request, ct);
        return await base.SendAsync(request, ct);
    }
}

file sealed class Received(List<long> reports) : IProgress<long>
{
    public void Report(long value)
    {
        lock (reports) reports.Add(value);
    }
}
