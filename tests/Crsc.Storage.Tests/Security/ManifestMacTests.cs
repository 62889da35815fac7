using System.Text.RegularExpressions;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;

namespace Crsc.Storage.Tests.Security;

/// <summary>
/// Every manifest the store writes carries an HMAC of its fields (a key derived from the node key); a reader decides
/// whether the node vouches for it, and the image endpoint serves only the checkpoints it does.
/// </summary>
public sealed class ManifestMacTests : IDisposable
{
    private const string Repository = "crsc/shop/cart/cart";
    private readonly StoreFixture _f = new();
    private readonly DiskCheckpointStore _store;
    private readonly StoreImageRegistry _registry;

    public ManifestMacTests()
    {
        _store = _f.Open();
        _registry = new StoreImageRegistry(_store, new CheckpointImagePlatform("linux", "amd64"));
    }

    public void Dispose()
    {
        _store.Dispose();
        _f.Dispose();
    }

    private async Task<CheckpointInfo> IngestAsync(string workload = "cart")
    {
        var archive = new TestArchive();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        return await _store.IngestAsync(_f.Stage(archive), archive.Source(workload), IngestOptions.Default, null, CancellationToken.None);
    }

    /// <summary>What the image endpoint answers for <paramref name="c"/>: tags, manifest by tag and by digest, its layer blob.</summary>
    private (bool Tagged, OciError? ByTag, OciError? ByDigest, OciError? Blob) Served(CheckpointInfo c, string repository = Repository)
    {
        var image = _registry.ImageOf(c);
        var tags = _registry.Tags(repository);
        return (tags.Value?.Contains(c.Id) == true,
            _registry.FindManifest(repository, c.Id).Error,
            _registry.FindManifest(repository, image.Manifest.Digest).Error,
            _registry.FindBlob(repository, image.Layer.Digest).Error);
    }

    [Fact]
    public async Task A_manifest_crsc_writes_carries_a_mac_of_the_node_key_and_reads_back_Verified_and_served()
    {
        var c = await IngestAsync();

        var json = await File.ReadAllTextAsync(StoreFixture.ManifestPath(c));
        Assert.Matches($"\"macKeyId\": \"{_f.Key.Id}\"", json);
        Assert.Matches("\"mac\": \"[0-9a-f]{64}\"", json);
        Assert.Equal(CheckpointAuthenticity.Verified, c.Authenticity);
        Assert.Equal(CheckpointAuthenticity.Verified, _store.Get(c.Id)!.Authenticity);
        Assert.Equal(CheckpointAuthenticity.Verified, new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!.Authenticity);
        Assert.Null(_store.Get(c.Id)!.AuthenticityProblem);
        Assert.Equal((true, null, null, null), Served(c));
    }

    [Fact]
    public async Task Pinning_leaves_the_mac_alone_and_the_manifest_Verified()
    {
        var c = await IngestAsync();
        var mac = Regex.Match(await File.ReadAllTextAsync(StoreFixture.ManifestPath(c)), "\"mac\": \"([0-9a-f]{64})\"").Groups[1].Value;

        await _store.SetPinnedAsync(c.Id, true, CancellationToken.None);

        var json = await File.ReadAllTextAsync(StoreFixture.ManifestPath(c));
        Assert.Contains("\"pinned\": true", json);
        Assert.Contains($"\"mac\": \"{mac}\"", json);
        Assert.Equal(CheckpointAuthenticity.Verified, _store.Get(c.Id)!.Authenticity);
    }

    public static TheoryData<string, string, string> Tampering => new()
    {
        { "digest", "\"digest\": \"sha256:[0-9a-f]{64}\"", "\"digest\": \"sha256:" + new string('e', 64) + "\"" },
        { "size", "\"size\": (\\d+)", "\"size\": 1$1" },
        { "image", "\"imageName\": \"[^\"]*\"", "\"imageName\": \"registry.example/evil:1\"" },
        { "pod uid", "\"podUid\": \"[^\"]*\"", "\"podUid\": \"00000000-0000-0000-0000-000000000000\"" },
        { "createdAt", "\"createdAt\": \"2026", "\"createdAt\": \"2025" },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task A_changed_field_makes_the_manifest_Invalid_and_it_is_not_served(string field, string pattern, string replacement)
    {
        var c = await IngestAsync();
        var image = _registry.ImageOf(c);
        StoreFixture.EditManifest(c, json =>
        {
            var changed = new Regex(pattern).Replace(json, replacement, 1);
            Assert.NotEqual(json, changed); // the field is there and was changed
            return changed;
        });

        var read = _store.Get(c.Id)!;
        Assert.Equal(CheckpointAuthenticity.Invalid, read.Authenticity);
        Assert.Equal(CheckpointAuthenticity.Invalid, new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!.Authenticity);
        Assert.Contains("invalid MAC", read.AuthenticityProblem);
        var (tagged, byTag, _, _) = Served(read);
        Assert.False(tagged);
        Assert.Equal((403, "DENIED"), (byTag!.StatusCode, byTag.Code));
        Assert.Contains("invalid MAC", byTag.Message);
        // the image as it was before the change is not served either (its manifest digest names no trusted checkpoint)
        Assert.NotNull(_registry.FindManifest(Repository, image.Manifest.Digest).Error);
        Assert.NotNull(_registry.FindBlob(Repository, image.Layer.Digest).Error);
        Assert.Equal(CheckpointAuthenticity.Invalid, _registry.FindByImage($"127.0.0.1:5000/{Repository}:{c.Id}")!.Authenticity);
        _ = field;
    }

    [Fact]
    public async Task A_checkpoint_moved_to_another_namespace_is_Invalid_and_not_served_there()
    {
        var c = await IngestAsync();
        var from = Path.GetDirectoryName(c.ArchivePath)!;
        var to = Path.Combine(_f.Checkpoints, "other", "cart", "cart");
        Directory.CreateDirectory(to, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var file in Directory.GetFiles(from)) File.Move(file, Path.Combine(to, Path.GetFileName(file)));
        var moved = _store.Get(c.Id) is null ? c with { ArchivePath = Path.Combine(to, Path.GetFileName(c.ArchivePath)) } : null;
        Assert.NotNull(moved);
        StoreFixture.EditManifest(moved, json => json.Replace("\"namespace\": \"shop\"", "\"namespace\": \"other\"", StringComparison.Ordinal)
            .Replace("\"podNamespace\": \"shop\"", "\"podNamespace\": \"other\"", StringComparison.Ordinal));

        var read = _store.Get(c.Id)!;
        Assert.Equal("other", read.Namespace);
        Assert.Equal(CheckpointAuthenticity.Invalid, read.Authenticity);
        var (tagged, byTag, byDigest, blob) = Served(read, "crsc/other/cart/cart");
        Assert.False(tagged);
        Assert.All([byTag, byDigest, blob], e => Assert.Equal("DENIED", e!.Code));
        Assert.Equal(c.Id, _registry.FindByImage($"node-a:5000/crsc/other/cart/cart@{_registry.ImageOf(read).Manifest.Digest}")!.Id);
    }

    [Fact]
    public async Task A_manifest_signed_with_another_key_is_OtherKey_naming_that_key()
    {
        var c = await IngestAsync();
        var other = NodeKey.Generate();
        StoreFixture.EditManifest(c, json => json, signWith: other);

        var read = _store.Get(c.Id)!;
        Assert.Equal(CheckpointAuthenticity.OtherKey, read.Authenticity);
        Assert.Equal(other.Id, read.MacKeyId);
        Assert.Contains($"key id {other.Id}", read.AuthenticityProblem);
        var (tagged, byTag, _, blob) = Served(read);
        Assert.False(tagged);
        Assert.Contains($"key id {other.Id}", byTag!.Message);
        Assert.Equal("DENIED", blob!.Code);
        // the other node's store, holding its key, vouches for it
        Assert.Equal(CheckpointAuthenticity.Verified, new ReadOnlyCheckpointStore(_f.Checkpoints, other).Get(c.Id)!.Authenticity);
    }

    [Fact]
    public async Task A_manifest_without_a_mac_is_Unsigned_and_not_served_and_a_forged_key_id_is_Invalid()
    {
        var c = await IngestAsync();
        StoreFixture.EditManifest(c, json => Regex.Replace(json, ",\\s*\"macKeyId\": \"[0-9a-f]+\",\\s*\"mac\": \"[0-9a-f]+\"", ""));
        Assert.DoesNotContain("mac", await File.ReadAllTextAsync(StoreFixture.ManifestPath(c)), StringComparison.OrdinalIgnoreCase);

        var read = _store.Get(c.Id)!;
        Assert.Equal(CheckpointAuthenticity.Unsigned, read.Authenticity);
        Assert.Contains("carries no MAC", read.AuthenticityProblem);
        Assert.Equal("DENIED", Served(read).ByTag!.Code);
        // a tool without the key still knows it is unsigned, and cannot tell about a signed one
        Assert.Equal(CheckpointAuthenticity.Unsigned, new ReadOnlyCheckpointStore(_f.Checkpoints).Get(c.Id)!.Authenticity);

        var d = await IngestAsync();
        Assert.Equal(CheckpointAuthenticity.Unchecked, new ReadOnlyCheckpointStore(_f.Checkpoints).Get(d.Id)!.Authenticity);
        StoreFixture.EditManifest(d, json => json.Replace(_f.Key.Id, "not a key id", StringComparison.Ordinal));
        Assert.Equal(CheckpointAuthenticity.Invalid, _store.Get(d.Id)!.Authenticity);
    }

    [Fact]
    public async Task A_manifest_changed_between_finding_a_blob_and_opening_it_is_not_served()
    {
        var c = await IngestAsync();
        var blob = _registry.FindBlob(Repository, _registry.ImageOf(c).Layer.Digest).Value!;
        StoreFixture.EditManifest(c, json => json.Replace("\"nodeName\": \"node-a\"", "\"nodeName\": \"node-b\"", StringComparison.Ordinal));

        var e = await Assert.ThrowsAsync<CheckpointCorruptException>(() => _registry.OpenBlobAsync(blob, null, CancellationToken.None));
        Assert.Contains("invalid MAC", e.Message);
    }

    [Fact]
    public async Task Recovery_and_listing_keep_a_tampered_checkpoint_a_person_can_look_at()
    {
        var c = await IngestAsync();
        StoreFixture.EditManifest(c, json => json.Replace("\"nodeName\": \"node-a\"", "\"nodeName\": \"node-b\"", StringComparison.Ordinal));

        var report = _store.Recover();

        Assert.Empty(report.Removed);
        Assert.True(File.Exists(StoreFixture.ManifestPath(c)));
        var listed = Assert.Single(_store.List());
        Assert.Equal((c.Id, CheckpointAuthenticity.Invalid), (listed.Id, listed.Authenticity));
    }

    [Fact]
    public async Task An_image_reference_finds_its_checkpoint_by_tag_or_manifest_digest_on_any_host_and_nothing_else()
    {
        var c = await IngestAsync();
        var digest = _registry.ImageOf(c).Manifest.Digest;

        Assert.Equal(c.Id, _registry.FindByImage($"10.0.0.5:5000/{Repository}@{digest}")!.Id);
        Assert.Equal(c.Id, _registry.FindByImage($"localhost:5000/{Repository}:{c.Id}")!.Id);
        Assert.Null(_registry.FindByImage($"10.0.0.5:5000/crsc/shop/other/cart@{digest}"));
        Assert.Null(_registry.FindByImage($"10.0.0.5:5000/{Repository}@sha256:{new string('0', 64)}"));
        Assert.Null(_registry.FindByImage($"registry.example/team/shop/cart/cart@{digest}"));
        Assert.Null(_registry.FindByImage("not a reference"));
    }

    [Fact]
    public void The_encoding_keeps_fields_apart()
    {
        var key = NodeKey.Generate().Derive(Crsc.Storage.Manifests.MacPurpose);
        ManifestDocument Doc(string? pod, string? uid) => new() { Id = "x", PodName = pod, PodUid = uid };

        var macs = new[] { Doc("ab", null), Doc("a", "b"), Doc(null, "ab"), Doc("ab", ""), Doc("", "ab") }
            .Select(d => Crsc.Storage.Manifests.ComputeMac(d, key)).ToList();

        Assert.Equal(macs.Count, macs.Distinct().Count());
        Assert.Equal(macs[0], Crsc.Storage.Manifests.ComputeMac(Doc("ab", null), key));
    }
}
