using System.Text.Json;
using System.Text.RegularExpressions;
using Crsc.Controllers.Storage;
using Crsc.Storage.Security;

namespace Crsc.Storage.Tests.Security;

/// <summary>
/// Manifest format 2 records the ContainerCheckpoint an archive was taken for (its owner), covered by the MAC; the
/// store answers which archives an object owns. Format 1 manifests (no owner) are still read and their MAC checked
/// over format 1's fields.
/// </summary>
public sealed class ManifestOwnerTests : IDisposable
{
    private const string Uid1 = "6f1c2d3e-0000-4000-8000-00000000c001";
    private readonly StoreFixture _f = new();
    private readonly DiskCheckpointStore _store;

    public ManifestOwnerTests() => _store = _f.Open();

    public void Dispose()
    {
        _store.Dispose();
        _f.Dispose();
    }

    private async Task<CheckpointInfo> IngestAsync(CheckpointOwner? owner)
    {
        var archive = new TestArchive();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        return await _store.IngestAsync(_f.Stage(archive), archive.Source() with { Owner = owner }, IngestOptions.Default, null,
            CancellationToken.None);
    }

    /// <summary>The MAC a format 1 manifest carries: format 1's fields, in format 1's order (written out here, not taken from the code under test).</summary>
    private static string FormatOneMac(ManifestDocument d, NodeKey key)
    {
        using var w = new MacWriter(key.Derive("crsc archive mac v1"), "crsc checkpoint manifest");
        w.Add(d.FormatVersion).Add(d.Kind).Add(d.Id).Add(d.Namespace).Add(d.Workload).Add(d.Container).Add(d.PodName).Add(d.PodUid).Add(d.NodeName)
            .Add(d.Archive.Compression).Add(d.Archive.CompressionLevel).Add(d.Archive.Digest).Add(d.Archive.Size)
            .Add(d.Archive.UncompressedDigest).Add(d.Archive.UncompressedSize)
            .Add(d.Source.RuntimeContainerId).Add(d.Source.ContainerName).Add(d.Source.PodName).Add(d.Source.PodNamespace).Add(d.Source.PodUid)
            .Add(d.Source.ImageName).Add(d.Source.ImageRef).Add(d.Source.ImageId).Add(d.Source.Runtime).Add(d.Source.ContainerCreatedAt)
            .Add(d.Source.CheckpointedAt).Add(d.CreatedAt).Add(d.CrscVersion).Add(d.MacKeyId);
        return w.ToHex();
    }

    /// <summary>Rewrites <paramref name="c"/>'s manifest as a crsc of format 1 wrote it: version 1, no owner, format 1's MAC.</summary>
    private void MakeFormatOne(CheckpointInfo c)
    {
        var path = StoreFixture.ManifestPath(c);
        var doc = JsonSerializer.Deserialize(File.ReadAllBytes(path), StorageJsonContext.Default.ManifestDocument)!;
        doc.FormatVersion = 1;
        doc.Owner = null;
        doc.Mac = FormatOneMac(doc, _f.Key);
        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(doc, StorageJsonContext.Default.ManifestDocument));
    }

    [Fact]
    public async Task A_format_1_manifest_is_still_read_and_its_mac_verified()
    {
        var c = await IngestAsync(null);
        MakeFormatOne(c);
        Assert.Contains("\"formatVersion\": 1", await File.ReadAllTextAsync(StoreFixture.ManifestPath(c)));

        var read = _store.Get(c.Id)!;
        Assert.Equal((1, CheckpointAuthenticity.Verified, (CheckpointOwner?)null), (read.FormatVersion, read.Authenticity, read.Owner));
        Assert.Equal(CheckpointAuthenticity.Verified, new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!.Authenticity);
        Assert.True((await _store.VerifyAsync(c.Id, CancellationToken.None)).Valid);
        // and pinning it keeps it a format 1 manifest its MAC vouches for
        await _store.SetPinnedAsync(c.Id, true, CancellationToken.None);
        Assert.Equal((1, CheckpointAuthenticity.Verified), (_store.Get(c.Id)!.FormatVersion, _store.Get(c.Id)!.Authenticity));
    }

    [Fact]
    public async Task A_format_1_manifest_that_names_an_owner_is_Invalid_and_its_owner_not_read()
    {
        var c = await IngestAsync(new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online));
        var path = StoreFixture.ManifestPath(c);
        var doc = JsonSerializer.Deserialize(File.ReadAllBytes(path), StorageJsonContext.Default.ManifestDocument)!;
        doc.FormatVersion = 1;
        doc.Mac = FormatOneMac(doc, _f.Key); // a MAC that verifies, over fields that do not include the owner
        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(doc, StorageJsonContext.Default.ManifestDocument));

        var read = _store.Get(c.Id)!;
        Assert.Equal((1, CheckpointAuthenticity.Invalid, (CheckpointOwner?)null), (read.FormatVersion, read.Authenticity, read.Owner));
        Assert.Empty(_store.FindByOwner("shop", "c1", Uid1));
        // kept for a person to look at, as any tampered checkpoint
        Assert.Empty(_store.Recover().Removed);
        Assert.NotNull(_store.Get(c.Id));
    }

    [Fact]
    public async Task The_owner_is_written_as_format_2_and_read_back_Verified()
    {
        var online = await IngestAsync(new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online));
        var offline = await IngestAsync(new CheckpointOwner("shop", "cart-app-202603011200", null, CheckpointOrigin.Offline));

        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(StoreFixture.ManifestPath(online)));
        Assert.Equal(2, json.RootElement.GetProperty("formatVersion").GetInt32());
        var owner = json.RootElement.GetProperty("owner");
        Assert.Equal(("ContainerCheckpoint", "shop", "c1", Uid1, "online"), (owner.GetProperty("kind").GetString(),
            owner.GetProperty("namespace").GetString(), owner.GetProperty("name").GetString(), owner.GetProperty("uid").GetString(),
            owner.GetProperty("origin").GetString()));
        Assert.Contains("\"origin\": \"offline\"", await File.ReadAllTextAsync(StoreFixture.ManifestPath(offline)));

        foreach (var (c, expected) in new[]
        {
            (online, new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online)),
            (offline, new CheckpointOwner("shop", "cart-app-202603011200", null, CheckpointOrigin.Offline)),
        })
        {
            Assert.Equal(expected, c.Owner);
            Assert.Equal((expected, CheckpointAuthenticity.Verified), (_store.Get(c.Id)!.Owner, _store.Get(c.Id)!.Authenticity));
            var readOnly = new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!;
            Assert.Equal((expected, CheckpointAuthenticity.Verified), (readOnly.Owner, readOnly.Authenticity));
        }
    }

    public static TheoryData<string, string, string> OwnerTampering => new()
    {
        { "owner name", "\"name\": \"c1\"", "\"name\": \"c2\"" },
        { "owner uid", "\"uid\": \"" + Uid1 + "\"", "\"uid\": \"6f1c2d3e-0000-4000-8000-00000000c002\"" },
        { "owner uid removed", ",\\s*\"uid\": \"" + Uid1 + "\"", "" },
        { "origin", "\"origin\": \"online\"", "\"origin\": \"offline\"" },
        { "owner removed", ",\\s*\"owner\": \\{[^}]*\\}", "" },
    };

    [Theory]
    [MemberData(nameof(OwnerTampering))]
    public async Task A_changed_owner_makes_the_manifest_Invalid(string field, string pattern, string replacement)
    {
        var c = await IngestAsync(new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online));
        StoreFixture.EditManifest(c, json =>
        {
            var changed = new Regex(pattern).Replace(json, replacement, 1);
            Assert.NotEqual(json, changed);
            return changed;
        });

        Assert.Equal(CheckpointAuthenticity.Invalid, _store.Get(c.Id)!.Authenticity);
        Assert.Equal(CheckpointAuthenticity.Invalid, new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!.Authenticity);
        _ = field;
    }

    [Fact]
    public async Task A_format_2_manifest_passed_off_as_format_1_without_its_owner_is_Invalid()
    {
        var c = await IngestAsync(new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online));
        StoreFixture.EditManifest(c, json => Regex.Replace(json.Replace("\"formatVersion\": 2", "\"formatVersion\": 1", StringComparison.Ordinal),
            ",\\s*\"owner\": \\{[^}]*\\}", ""));

        var read = _store.Get(c.Id)!;
        Assert.Equal((1, (CheckpointOwner?)null), (read.FormatVersion, read.Owner));
        Assert.Equal(CheckpointAuthenticity.Invalid, read.Authenticity);
    }

    [Fact]
    public async Task FindByOwner_answers_the_archives_of_exactly_that_object()
    {
        var c1 = await IngestAsync(new CheckpointOwner("shop", "c1", Uid1, CheckpointOrigin.Online));
        var c1Again = await IngestAsync(new CheckpointOwner("shop", "c1", "6f1c2d3e-0000-4000-8000-00000000c0a9", CheckpointOrigin.Online));
        var c2 = await IngestAsync(new CheckpointOwner("shop", "c2", "6f1c2d3e-0000-4000-8000-00000000c002", CheckpointOrigin.Online));
        var offline = await IngestAsync(new CheckpointOwner("shop", "c1", null, CheckpointOrigin.Offline));
        var unowned = await IngestAsync(null);
        var formatOne = await IngestAsync(null);
        MakeFormatOne(formatOne);

        Assert.Equal([c1.Id], _store.FindByOwner("shop", "c1", Uid1).Select(c => c.Id));
        Assert.Equal([c1Again.Id], _store.FindByOwner("shop", "c1", "6f1c2d3e-0000-4000-8000-00000000c0a9").Select(c => c.Id));
        Assert.Equal([c2.Id], _store.FindByOwner("shop", "c2", "6f1c2d3e-0000-4000-8000-00000000c002").Select(c => c.Id));
        Assert.Equal([offline.Id], _store.FindByOwner("shop", "c1", null).Select(c => c.Id));
        Assert.Empty(_store.FindByOwner("shop", "c3", null));
        Assert.Empty(_store.FindByOwner("other", "c1", Uid1));
        Assert.Equal(6, _store.List().Count);
        _ = unowned;

        var e = Assert.Throws<InvalidCheckpointNameException>(() => _store.FindByOwner("../shop", "c1", Uid1));
        Assert.Contains("namespace", e.Message);
        Assert.Throws<InvalidCheckpointNameException>(() => _store.FindByOwner("shop", "C1/..", Uid1));
    }

    [Fact]
    public async Task An_owner_outside_the_checkpoints_namespace_or_an_online_owner_without_uid_is_refused_and_nothing_stored()
    {
        var e = await Assert.ThrowsAsync<InvalidCheckpointNameException>(() =>
            IngestAsync(new CheckpointOwner("other", "c1", Uid1, CheckpointOrigin.Online)));
        Assert.Contains("'other'", e.Message);
        await Assert.ThrowsAsync<InvalidCheckpointNameException>(() => IngestAsync(new CheckpointOwner("shop", "c1", null, CheckpointOrigin.Online)));
        await Assert.ThrowsAsync<InvalidCheckpointNameException>(() => IngestAsync(new CheckpointOwner("shop", "c1", "not a uid", CheckpointOrigin.Online)));
        Assert.Empty(_store.List());
    }
}
