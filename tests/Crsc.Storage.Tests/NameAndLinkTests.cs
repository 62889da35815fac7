using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class NameAndLinkTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    [Theory]
    [InlineData("..", "cart", "cart")]
    [InlineData("shop", "..", "cart")]
    [InlineData("shop", "cart", "..")]
    [InlineData("shop/../..", "cart", "cart")]
    [InlineData("shop", "a/b", "cart")]
    [InlineData("shop", "cart", "a/b")]
    [InlineData(".hidden", "cart", "cart")]
    [InlineData("shop", ".cart", "cart")]
    [InlineData("shop", "cart", "ca\0rt")]
    [InlineData("Shop", "cart", "cart")]
    [InlineData("", "cart", "cart")]
    [InlineData("shop", "cart..x", "cart")]
    [InlineData("shop", "cart", "cart.v2")] // a container name is a label: no dots
    [InlineData("shop", "-cart", "cart")]
    public async Task Names_from_the_cluster_are_validated_before_touching_a_path(string ns, string workload, string container)
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        var staged = _f.Stage(archive);
        var source = new CheckpointedContainer(ns, workload, container);
        await Assert.ThrowsAsync<InvalidCheckpointNameException>(() => store.IngestAsync(staged, source, IngestOptions.Default, null, CancellationToken.None));
        Assert.Throws<InvalidCheckpointNameException>(() => store.NewStagingPath(source));
        Assert.Equal([Path.Combine(_f.Checkpoints, DiskCheckpointStore.LockFileName)], Directory.EnumerateFileSystemEntries(_f.Checkpoints));
    }

    [Fact]
    public void Subdomain_workload_names_with_dots_and_long_labels_are_fine()
    {
        Assert.Equal("web.v2", StoreNames.Workload("web.v2"));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Namespace(new string('a', 64)));
        Assert.Equal(new string('a', 63), StoreNames.Namespace(new string('a', 63)));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Pod("pod_1"));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.PodUid("../uid"));
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("20260301T120000Z-0000000/")]
    [InlineData(".tmp-20260301T120000Z-00000000")]
    [InlineData("20260301T120000Z-0000000G")]
    [InlineData("")]
    public async Task Ids_are_validated(string id)
    {
        using var store = _f.Open();
        Assert.Throws<InvalidCheckpointNameException>(() => store.Get(id));
        Assert.Throws<InvalidCheckpointNameException>(() => store.Delete(id));
        await Assert.ThrowsAsync<InvalidCheckpointNameException>(() => store.OpenReadAsync(id, CancellationToken.None));
    }

    [Fact]
    public async Task A_symlinked_directory_in_the_store_is_never_followed()
    {
        // a committed checkpoint elsewhere, reachable only through a symlink planted in the store
        using var elsewhere = new StoreFixture();
        string foreignId;
        using (var other = elsewhere.Open())
        {
            var a = new TestArchive();
            foreignId = (await other.IngestAsync(elsewhere.Stage(a), a.Source(), IngestOptions.Default, null, CancellationToken.None)).Id;
        }
        using var store = _f.Open();
        File.CreateSymbolicLink(Path.Combine(_f.Checkpoints, "shop"), Path.Combine(elsewhere.Checkpoints, "shop"));

        Assert.Empty(store.List());
        Assert.Null(store.Get(foreignId));
        Assert.False(store.Delete(foreignId));

        // ingesting into that namespace refuses to write through the link
        var archive = new TestArchive();
        var e = await Assert.ThrowsAsync<IOException>(() => store.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("symbolic link", e.Message);
        Assert.Single(Directory.EnumerateFiles(Path.Combine(elsewhere.Checkpoints, "shop", "cart", "cart"), "*.json"));

        // recovery leaves the link (and what it points to) alone
        var report = store.Recover();
        Assert.All(report.Removed, r => Assert.Equal(RecoveryReason.StagingLeftover, r.Reason));
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(elsewhere.Checkpoints, "shop", "cart", "cart")).Count());
    }

    [Fact]
    public async Task Symlinked_workload_directory_and_manifest_are_not_followed()
    {
        using var store = _f.Open();
        var a = new TestArchive();
        var info = await store.IngestAsync(_f.Stage(a), a.Source(), IngestOptions.Default, null, CancellationToken.None);
        var containerDir = Path.GetDirectoryName(info.ArchivePath)!;

        // a second workload directory that is a link to the first
        File.CreateSymbolicLink(Path.Combine(_f.Checkpoints, "shop", "alias"), Path.Combine(_f.Checkpoints, "shop", "cart"));
        Assert.Equal([info.Id], store.List().Select(c => c.Id));

        // a manifest that is a symlink to a real one is ignored, and so is an archive that is a symlink
        var fakeId = "20260301T120000Z-abcdef01";
        File.CreateSymbolicLink(Path.Combine(containerDir, fakeId + ".json"), Path.Combine(containerDir, info.Id + ".json"));
        File.CreateSymbolicLink(Path.Combine(containerDir, fakeId + ".tar.zst"), info.ArchivePath);
        Assert.Equal([info.Id], store.List().Select(c => c.Id));
        Assert.Null(store.Get(fakeId));
    }

    [Fact]
    public async Task A_staged_archive_that_is_a_symlink_is_refused()
    {
        using var store = _f.Open();
        var a = new TestArchive();
        var real = a.WriteTo(_f.Incoming);
        Directory.CreateDirectory(_f.Staging);
        var link = Path.Combine(_f.Staging, "link.tar");
        File.CreateSymbolicLink(link, real);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() => store.IngestAsync(link, a.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("symbolic link", e.Message);
        Assert.True(File.Exists(real));
    }

    [Fact]
    public void A_store_root_that_is_a_symlink_is_refused()
    {
        Directory.CreateDirectory(_f.Incoming);
        var link = _f.Dir.Combine("linked-checkpoints");
        Directory.CreateSymbolicLink(link, _f.Incoming);
        var e = Assert.Throws<IOException>(() => new DiskCheckpointStore(_f.Options() with { CheckpointDirectory = link }));
        Assert.Contains("symbolic link", e.Message);
    }

    // .NET's '$' also matches before a final '\n': every name check must refuse a trailing newline
    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void Names_with_a_trailing_newline_are_refused(string end)
    {
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Namespace("default" + end));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Container("app" + end));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Workload("web" + end));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.Pod("web-0" + end));
        Assert.Throws<InvalidCheckpointNameException>(() => StoreNames.PodUid("0123abcd" + end));
        Assert.False(StoreNames.IsId("20261206T120000Z-0123abcd" + end));
        Assert.True(StoreNames.IsId("20261206T120000Z-0123abcd"));
        Assert.False(Crsc.Storage.Oci.RegistryNames.IsRepository("crsc/shop" + end));
        Assert.False(Crsc.Storage.Oci.RegistryNames.IsTag("latest" + end));
        Assert.False(Crsc.Storage.Oci.RegistryNames.IsDigest("sha256:" + new string('a', 64) + end));
        Assert.False(Crsc.Storage.Oci.RegistryNames.IsHost("registry.example:5000" + end));
        Assert.False(Crsc.Storage.Oci.OciRoute.IsValidName("crsc/shop" + end));
        Assert.False(Crsc.Storage.Oci.ImageReference.TryParse("registry.example/crsc/shop@sha256:" + new string('a', 64) + end, out _, out _));
    }
}
