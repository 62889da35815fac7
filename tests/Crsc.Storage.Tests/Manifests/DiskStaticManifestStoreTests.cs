using System.Text;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.StaticPods;
using Crsc.Storage.StaticManifests;
using Crsc.Testing;

namespace Crsc.Storage.Tests.Manifests;

/// <summary>The static-pod checkpoints on disk: layout, contents, modes, atomic replacement, hostile names, symlinks,
/// and that nothing crsc did not write is ever replaced or removed.</summary>
public sealed class DiskStaticManifestStoreTests : IDisposable
{
    private const UnixFileMode Dir0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode File0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly ObjectKey Web = new("default", "web");

    private readonly TempDir _dir = new();
    private readonly DiskStaticManifestStore _store;

    public DiskStaticManifestStoreTests()
    {
        Directory.CreateDirectory(_dir.Combine("manifests"));
        _store = new DiskStaticManifestStore(Options());
    }

    public void Dispose() => _dir.Dispose();

    private StaticManifestStoreOptions Options() => new()
    {
        ManifestsDir = _dir.Combine("manifests"),
        InactiveManifestsDir = _dir.Combine("inactive"),
        SecretsDir = _dir.Combine("secrets"),
        ConfigMapsDir = _dir.Combine("configmaps"),
        StateDir = _dir.Combine("state"),
        Key = _key,
    };

    private readonly Crsc.Storage.Security.NodeKey _key = Crsc.Storage.Security.NodeKey.Generate();

    private static byte[] Manifest(ObjectKey parent, string image = "registry.local/web:1") => StaticPodManifest.Serialize(new Pod
    {
        Metadata = new ObjectMeta { Name = parent.Name, Namespace = parent.Namespace, Annotations = new() { [Annotations.CheckpointOf] = parent.Name } },
        Spec = new PodSpec { Containers = [new Container { Name = "main", Image = image }] },
    });

    private static StaticDataObject Obj(string name, params (string Key, string Value)[] files) =>
        new(name, files.ToDictionary(f => f.Key, f => Encoding.UTF8.GetBytes(f.Value)));

    private static StaticCheckpointData Data(ObjectKey parent, StaticDataObject[]? secrets = null, StaticDataObject[]? configMaps = null,
        string image = "registry.local/web:1") =>
        new(parent, Manifest(parent, image), secrets ?? [], configMaps ?? []);

    /// <summary>Every path under the temp dir, with "/" for directories, for "nothing changed" assertions.</summary>
    private string[] Tree() => Directory.EnumerateFileSystemEntries(_dir.Path, "*", SearchOption.AllDirectories)
        .Select(p => Path.GetRelativePath(_dir.Path, p) + (Directory.Exists(p) && new FileInfo(p).LinkTarget is null ? "/" : ""))
        .Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void Writes_the_manifest_and_each_key_of_each_secret_and_configmap_with_0700_dirs_and_0600_files()
    {
        var data = Data(Web, [Obj("tls", ("tls.crt", "CERT"), ("tls.key", "KEY"))], [Obj("cfg", ("app.conf", "x=1"))]);
        Assert.True(_store.WriteInactive(data));

        Assert.Equal(data.Manifest, File.ReadAllBytes(_dir.Combine("inactive", "default-web.json")));
        Assert.Equal("CERT", File.ReadAllText(_dir.Combine("secrets", "default", "web", "tls", "tls.crt")));
        Assert.Equal("KEY", File.ReadAllText(_dir.Combine("secrets", "default", "web", "tls", "tls.key")));
        Assert.Equal("x=1", File.ReadAllText(_dir.Combine("configmaps", "default", "web", "cfg", "app.conf")));
        foreach (var dir in new[] { "inactive", "secrets", "secrets/default", "secrets/default/web", "secrets/default/web/tls",
                     "configmaps/default/web/cfg" })
            Assert.Equal(Dir0700, File.GetUnixFileMode(_dir.Combine(dir)));
        foreach (var file in new[] { "inactive/default-web.json", "secrets/default/web/tls/tls.crt", "secrets/default/web/tls/tls.key",
                     "configmaps/default/web/cfg/app.conf" })
            Assert.Equal(File0600, File.GetUnixFileMode(_dir.Combine(file)));
        // no temp files left behind
        Assert.DoesNotContain(Tree(), p => Path.GetFileName(p.TrimEnd('/')).StartsWith('.'));
        Assert.Equal([new StoredStaticCheckpoint(Web, true, false)], _store.List());
    }

    [Fact]
    public void Rewriting_the_same_data_changes_nothing_and_changed_data_replaces_keys_and_objects_that_went_away()
    {
        _store.WriteInactive(Data(Web, [Obj("tls", ("tls.crt", "CERT"), ("old.key", "OLD")), Obj("gone", ("a", "1"))]));
        var written = File.GetLastWriteTimeUtc(_dir.Combine("inactive", "default-web.json"));
        Assert.False(_store.WriteInactive(Data(Web, [Obj("tls", ("tls.crt", "CERT"), ("old.key", "OLD")), Obj("gone", ("a", "1"))])));
        Assert.Equal(written, File.GetLastWriteTimeUtc(_dir.Combine("inactive", "default-web.json")));

        Assert.True(_store.WriteInactive(Data(Web, [Obj("tls", ("tls.crt", "CERT2"))], image: "registry.local/web:2")));
        Assert.Equal("CERT2", File.ReadAllText(_dir.Combine("secrets", "default", "web", "tls", "tls.crt")));
        Assert.False(File.Exists(_dir.Combine("secrets", "default", "web", "tls", "old.key")));
        Assert.False(Directory.Exists(_dir.Combine("secrets", "default", "web", "gone")));
        Assert.Contains("registry.local/web:2", File.ReadAllText(_dir.Combine("inactive", "default-web.json")));
    }

    [Fact]
    public void A_pre_existing_open_directory_for_secrets_is_refused_and_its_mode_left_alone()
    {
        var podDir = _dir.Combine("secrets", "default", "web");
        Directory.CreateDirectory(podDir, Dir0700);
        File.SetUnixFileMode(_dir.Combine("secrets"), Dir0700);
        File.SetUnixFileMode(_dir.Combine("secrets", "default"), Dir0700);
        File.SetUnixFileMode(podDir, (UnixFileMode)0b111_101_101);

        var e = Assert.Throws<StaticManifestStoreException>(() => _store.WriteInactive(Data(Web, [Obj("tls", ("tls.key", "KEY"))])));
        Assert.Contains(podDir, e.Message);
        Assert.Contains("accessible to group or others (mode 0755)", e.Message);
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(podDir)); // not re-moded
        Assert.False(Directory.Exists(Path.Combine(podDir, "tls")));
    }

    [Fact]
    public void A_written_file_someone_opened_up_is_replaced_by_a_new_private_one_not_chmodded()
    {
        var data = Data(Web, [Obj("tls", ("tls.key", "KEY"))]);
        _store.WriteInactive(data);
        var key = _dir.Combine("secrets", "default", "web", "tls", "tls.key");
        File.SetUnixFileMode(key, (UnixFileMode)0b110_100_100);
        var kept = _dir.Combine("kept.key");
        Assert.Equal(0, Link(key, kept)); // the opened-up inode, as whoever opened it may still hold it

        _store.WriteInactive(data);

        Assert.Equal(File0600, File.GetUnixFileMode(key));
        Assert.Equal("KEY", File.ReadAllText(key));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(kept)); // the old inode was not changed in place
    }

    [Fact]
    public void Activate_copies_into_the_manifest_directory_deactivate_removes_it_and_remove_takes_everything()
    {
        File.WriteAllText(_dir.Combine("manifests", "etcd.yaml"), "apiVersion: v1\nkind: Pod\n");
        _store.WriteInactive(Data(Web, [Obj("tls", ("k", "v"))], [Obj("cfg", ("c", "1"))]));
        _store.WriteInactive(Data(new ObjectKey("default", "other"), [Obj("tls", ("k", "v"))]));

        _store.Activate(Web);
        Assert.Equal(File.ReadAllBytes(_dir.Combine("inactive", "default-web.json")), File.ReadAllBytes(_dir.Combine("manifests", "default-web.json")));
        Assert.Equal(File0600, File.GetUnixFileMode(_dir.Combine("manifests", "default-web.json")));
        Assert.Contains(new StoredStaticCheckpoint(Web, true, true), _store.List());

        _store.Deactivate(Web);
        Assert.False(File.Exists(_dir.Combine("manifests", "default-web.json")));
        Assert.Contains(new StoredStaticCheckpoint(Web, true, false), _store.List());

        _store.Activate(Web);
        _store.Remove(Web);
        Assert.Equal([new StoredStaticCheckpoint(new ObjectKey("default", "other"), true, false)], _store.List());
        Assert.False(Directory.Exists(_dir.Combine("secrets", "default", "web")));
        Assert.False(Directory.Exists(_dir.Combine("configmaps", "default")), "the namespace directory goes with its last pod");
        Assert.True(Directory.Exists(_dir.Combine("secrets", "default", "other")), "another pod's secrets stay");
        Assert.Equal("apiVersion: v1\nkind: Pod\n", File.ReadAllText(_dir.Combine("manifests", "etcd.yaml")));
    }

    [Fact]
    public void Manifests_crsc_did_not_write_are_not_listed_replaced_or_removed()
    {
        // bootkube's checkpoint, a plain static pod in JSON, garbage, all named like crsc's file for default/web
        var bootkube = """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default","annotations":{"checkpointer.alpha.coreos.com/checkpoint-of":"web"}},"spec":{"containers":[]}}""";
        foreach (var foreign in new[] { bootkube, """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"}}""", "not json" })
        {
            File.WriteAllText(_dir.Combine("manifests", "default-web.json"), foreign);
            Assert.DoesNotContain(_store.List(), c => c.Active);
            _store.WriteInactive(Data(Web));
            var e = Assert.Throws<StaticManifestStoreException>(() => _store.Activate(Web));
            Assert.Contains("default-web.json", e.Message);
            Assert.Throws<StaticManifestStoreException>(() => _store.Deactivate(Web));
            Assert.Throws<StaticManifestStoreException>(() => _store.Remove(Web));
            Assert.Equal(foreign, File.ReadAllText(_dir.Combine("manifests", "default-web.json")));
        }
    }

    [Fact]
    public void Two_parents_whose_file_names_collide_do_not_overwrite_each_other()
    {
        var first = new ObjectKey("a-b", "c");
        var second = new ObjectKey("a", "b-c");
        _store.WriteInactive(Data(first));
        var e = Assert.Throws<StaticManifestStoreException>(() => _store.WriteInactive(Data(second)));
        Assert.Contains("a-b/c", e.Message);
        Assert.Equal([new StoredStaticCheckpoint(first, true, false)], _store.List());
    }

    [Theory]
    [InlineData("..", "web", "tls", "k")]
    [InlineData("default", "../../etc", "tls", "k")]
    [InlineData("default", "a/b", "tls", "k")]
    [InlineData("default", "web", "..", "k")]
    [InlineData("default", "web", "tls/x", "k")]
    [InlineData("default", "web", "tls", "../../../passwd")]
    [InlineData("default", "web", "tls", "..data")]
    [InlineData("Default", "web", "tls", "k")]
    public void Hostile_names_are_refused_and_nothing_is_written(string ns, string pod, string secret, string key)
    {
        var before = Tree();
        var parent = new ObjectKey(ns, pod);
        var data = new StaticCheckpointData(parent, Manifest(parent), [Obj(secret, (key, "x"))], []);
        var e = Assert.ThrowsAny<Exception>(() => _store.WriteInactive(data));
        Assert.True(e is InvalidStaticPodNameException or StaticManifestStoreException, e.ToString());
        Assert.Equal(before, Tree());
        Assert.ThrowsAny<InvalidStaticPodNameException>(() => _store.Remove(parent.Namespace == "default" && parent.Name == "web" ? new ObjectKey("default", "..") : parent));
        Assert.Equal(before, Tree());
    }

    [Fact]
    public void A_symlinked_root_or_directory_is_refused_and_its_target_untouched()
    {
        var elsewhere = _dir.Combine("elsewhere");
        Directory.CreateDirectory(elsewhere);

        // the inactive directory is a link
        Directory.CreateSymbolicLink(_dir.Combine("inactive"), elsewhere);
        var e = Assert.Throws<StaticManifestStoreException>(() => _store.WriteInactive(Data(Web)));
        Assert.Contains("symbolic link", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
        Assert.Empty(_store.List());
        File.Delete(_dir.Combine("inactive"));

        // a namespace directory under the secrets root is a link
        Directory.CreateDirectory(_dir.Combine("secrets"));
        Directory.CreateSymbolicLink(_dir.Combine("secrets", "default"), elsewhere);
        e = Assert.Throws<StaticManifestStoreException>(() => _store.WriteInactive(Data(Web, [Obj("tls", ("k", "v"))])));
        Assert.Contains(_dir.Combine("secrets", "default"), e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
        Assert.Throws<StaticManifestStoreException>(() => _store.Remove(Web));
        Assert.True(Directory.Exists(elsewhere));
        File.Delete(_dir.Combine("secrets", "default"));

        // a link where the active manifest goes is not followed
        _store.WriteInactive(Data(Web));
        var target = Path.Combine(elsewhere, "victim.json");
        File.WriteAllText(target, "keep");
        File.CreateSymbolicLink(_dir.Combine("manifests", "default-web.json"), target);
        Assert.Throws<StaticManifestStoreException>(() => _store.Activate(Web));
        Assert.Throws<StaticManifestStoreException>(() => _store.Deactivate(Web));
        Assert.Equal("keep", File.ReadAllText(target));
        Assert.NotNull(new FileInfo(_dir.Combine("manifests", "default-web.json")).LinkTarget);

        // and a symlinked manifests directory as a whole
        File.Delete(_dir.Combine("manifests", "default-web.json"));
        Directory.Delete(_dir.Combine("manifests"));
        Directory.CreateSymbolicLink(_dir.Combine("manifests"), elsewhere);
        Assert.Throws<StaticManifestStoreException>(() => _store.Activate(Web));
        Assert.Equal(["victim.json"], Directory.EnumerateFileSystemEntries(elsewhere).Select(Path.GetFileName));
    }

    [Fact]
    public void A_link_planted_inside_a_secret_directory_is_replaced_not_followed()
    {
        _store.WriteInactive(Data(Web, [Obj("tls", ("k", "v"))]));
        var target = _dir.Combine("victim");
        File.WriteAllText(target, "keep");
        var key = _dir.Combine("secrets", "default", "web", "tls", "k");
        File.Delete(key);
        File.CreateSymbolicLink(key, target);
        Assert.True(_store.WriteInactive(Data(Web, [Obj("tls", ("k", "v"))])));
        Assert.Null(new FileInfo(key).LinkTarget);
        Assert.Equal("v", File.ReadAllText(key));
        Assert.Equal("keep", File.ReadAllText(target));
    }

    [Fact]
    public void State_round_trips_atomically_and_a_corrupt_or_newer_file_starts_afresh()
    {
        Assert.Same(StaticCheckpointState.Empty, _store.LoadState());
        var t = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var state = new StaticCheckpointState(new Dictionary<ObjectKey, StaticCheckpointTimers>
        {
            [Web] = new() { DownSince = t, WrittenVersion = "42", WrittenAt = t.AddSeconds(1) },
            [new ObjectKey("kube-system", "api")] = new() { UpSince = t.AddSeconds(2) },
        });
        _store.SaveState(state);
        var path = _dir.Combine("state", "static-pods", "state.json");
        Assert.Equal(File0600, File.GetUnixFileMode(path));
        Assert.Equal(Dir0700, File.GetUnixFileMode(_dir.Combine("state", "static-pods")));
        Assert.Contains("\"formatVersion\": 1", File.ReadAllText(path));
        Assert.True(state.SameAs(new DiskStaticManifestStore(Options()).LoadState()));

        File.WriteAllText(path, "{ not json");
        Assert.Empty(_store.LoadState().Timers);
        File.WriteAllText(path, """{"formatVersion": 2, "checkpoints": [{"namespace":"default","name":"web"}]}""");
        Assert.Empty(_store.LoadState().Timers);
    }

    // --- MACs ---

    private string MacFile => _dir.Combine("state", "static-pods", "macs", "default-web.mac");

    private void WriteTlsAndCfg() =>
        Assert.True(_store.WriteInactive(Data(Web, [Obj("tls", ("tls.crt", "CERT"), ("tls.key", "KEY"))], [Obj("cfg", ("app.conf", "x=1"))])));

    /// <summary>Activation is refused with <paramref name="expected"/> in the message, and nothing on disk changes.</summary>
    private void RefusedToActivate(string expected, DiskStaticManifestStore? store = null)
    {
        var before = Tree();
        var contents = before.Where(p => !p.EndsWith('/')).ToDictionary(p => p, p => File.ReadAllBytes(_dir.Combine(p)));
        var e = Assert.Throws<StaticManifestStoreException>(() => (store ?? _store).Activate(Web));
        Assert.Contains(expected, e.Message);
        Assert.Contains("default/web", e.Message);
        Assert.Equal(before, Tree());
        Assert.All(contents, kv => Assert.Equal(kv.Value, File.ReadAllBytes(_dir.Combine(kv.Key))));
        Assert.False(File.Exists(_dir.Combine("manifests", "default-web.json")));
    }

    [Fact]
    public void A_checkpoint_gets_a_mac_of_the_node_key_and_activates_while_it_verifies()
    {
        WriteTlsAndCfg();

        Assert.Matches($"^crsc-static-mac-v1 {_key.Id} [0-9a-f]{{64}}\n\\z", File.ReadAllText(MacFile));
        Assert.Equal(File0600, File.GetUnixFileMode(MacFile));
        Assert.Equal(Dir0700, File.GetUnixFileMode(Path.GetDirectoryName(MacFile)!));
        _store.Activate(Web);
        Assert.True(File.Exists(_dir.Combine("manifests", "default-web.json")));

        _store.Remove(Web);
        Assert.False(File.Exists(MacFile));
    }

    public static TheoryData<string> Tampering => ["manifest", "secret", "configmap", "new key", "removed key", "new object"];

    [Theory]
    [MemberData(nameof(Tampering))]
    public void A_checkpoint_changed_after_crsc_wrote_it_is_not_activated_and_left_as_it_is(string change)
    {
        WriteTlsAndCfg();
        switch (change)
        {
            case "manifest":
                File.WriteAllBytes(_dir.Combine("inactive", "default-web.json"), Manifest(Web, image: "registry.local/evil:1"));
                break;
            case "secret":
                File.WriteAllText(_dir.Combine("secrets", "default", "web", "tls", "tls.key"), "OTHER");
                break;
            case "configmap":
                File.WriteAllText(_dir.Combine("configmaps", "default", "web", "cfg", "app.conf"), "x=2");
                break;
            case "new key":
                File.WriteAllText(_dir.Combine("secrets", "default", "web", "tls", "extra"), "E");
                break;
            case "removed key":
                File.Delete(_dir.Combine("secrets", "default", "web", "tls", "tls.crt"));
                break;
            case "new object":
                Directory.CreateDirectory(_dir.Combine("configmaps", "default", "web", "more"));
                break;
        }

        RefusedToActivate("invalid MAC");
    }

    [Fact]
    public void A_checkpoint_without_a_mac_or_with_another_keys_is_not_activated()
    {
        WriteTlsAndCfg();
        var other = Crsc.Storage.Security.NodeKey.Generate();
        RefusedToActivate($"signed by key id {_key.Id}", new DiskStaticManifestStore(Options() with { Key = other }));

        File.Delete(MacFile);
        RefusedToActivate("has no MAC");

        // written again (as the checkpointer does while the API server answers): the MAC is back, though nothing else changed
        Assert.False(_store.WriteInactive(Data(Web, [Obj("tls", ("tls.crt", "CERT"), ("tls.key", "KEY"))], [Obj("cfg", ("app.conf", "x=1"))])));
        _store.Activate(Web);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link(string existing, string created);
}
