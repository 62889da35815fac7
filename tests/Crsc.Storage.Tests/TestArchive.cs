using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Testing;

namespace Crsc.Storage.Tests;

/// <summary>
/// Builds archives in the layout CRI-O and containerd write for a container checkpoint: <c>checkpoint/</c> (CRIU images),
/// <c>config.dump</c>, <c>spec.dump</c>, <c>rootfs-diff.tar</c>, <c>network.status</c>, <c>stats-dump</c>.
/// </summary>
internal sealed class TestArchive
{
    public string Namespace { get; set; } = "shop";
    public string Pod { get; set; } = "cart-6d4b9c7f5-x2kqz";
    public string PodUid { get; set; } = "5f0e6a52-1c1e-4b8e-9d7a-2f4c7b1e9a10";
    public string Container { get; set; } = "cart";
    public bool Containerd { get; set; }
    public int PageBytes { get; set; } = 192 * 1024;
    /// <summary>Every page random (memory zstd cannot shrink), rather than a mix of zero, text and random pages.</summary>
    public bool RandomPages { get; set; }
    public bool WithConfig { get; set; } = true;
    public bool WithSpec { get; set; } = true;
    public bool WithCheckpointDirectory { get; set; } = true;
    public string? ConfigOverride { get; set; }
    /// <summary>Extra entries, written after the regular ones.</summary>
    public List<Action<TarWriter>> Extra { get; } = [];
    public int Seed { get; set; } = 42;

    public string ConfigDump => ConfigOverride ?? $$"""
        {
          "id": "3c1d5f0b8a7e4c2d9f6b1a0e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c",
          "name": "{{(Containerd ? Container : $"k8s_{Container}_{Pod}_{Namespace}_{PodUid}_0")}}",
          "rootfsImage": "sha256:9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
          "rootfsImageRef": "registry.example/shop/cart@sha256:0102030405060708091011121314151617181920212223242526272829303132",
          "rootfsImageName": "registry.example/shop/cart:1.4.2",
          "runtime": "{{(Containerd ? "io.containerd.runc.v2" : "runc")}}",
          "createdTime": "2026-01-01T00:00:00.123456789Z",
          "checkpointedTime": "2026-01-01T01:02:03.5Z",
          "restoredTime": "0001-01-01T00:00:00Z",
          "restored": false
        }
        """;

    public string SpecDump => Containerd
        ? $$"""
            {"ociVersion":"1.2.0","process":{"args":["/cart"]},"root":{"path":"rootfs"},
             "annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"{{Container}}",
             "io.kubernetes.cri.sandbox-name":"{{Pod}}","io.kubernetes.cri.sandbox-namespace":"{{Namespace}}",
             "io.kubernetes.cri.sandbox-uid":"{{PodUid}}","io.kubernetes.cri.image-name":"registry.example/shop/cart:1.4.2" }
            }
            """
        : $$"""
            {"ociVersion":"1.0.2-dev","process":{"args":["/cart"]},"root":{"path":"/var/lib/containers/storage/overlay/x/merged"},
             "annotations":{"io.container.manager":"cri-o","io.kubernetes.container.name":"{{Container}}",
             "io.kubernetes.pod.name":"{{Pod}}","io.kubernetes.pod.namespace":"{{Namespace}}","io.kubernetes.pod.uid":"{{PodUid}}",
             "io.kubernetes.cri-o.ImageName":"registry.example/shop/cart:1.4.2","io.kubernetes.cri-o.ContainerType":"container" }
            }
            """;

    public CheckpointedContainer Source(string workload = "cart") => new(Namespace, workload, Container) { PodName = Pod, PodUid = PodUid };

    public byte[] Build()
    {
        var output = new MemoryStream();
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            if (WithCheckpointDirectory)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "checkpoint/") { Mode = (UnixFileMode)0b111_000_000 });
                File(tar, "checkpoint/inventory.img", Encoding.ASCII.GetBytes("CRIU inventory image\n"));
                File(tar, "checkpoint/pstree.img", Encoding.ASCII.GetBytes("pid 1 cart\n"));
                File(tar, "checkpoint/pages-1.img", RandomPages ? RandomBytes(PageBytes, Seed) : Pages(PageBytes, Seed));
            }
            if (WithConfig) File(tar, "config.dump", Encoding.UTF8.GetBytes(ConfigDump));
            if (WithSpec) File(tar, "spec.dump", Encoding.UTF8.GetBytes(SpecDump));
            File(tar, "rootfs-diff.tar", RootfsDiff());
            File(tar, "network.status", Encoding.ASCII.GetBytes("[]"));
            File(tar, "stats-dump", new byte[64]);
            foreach (var extra in Extra) extra(tar);
        }
        return output.ToArray();
    }

    public string WriteTo(string directory, string name = "checkpoint.tar")
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        System.IO.File.WriteAllBytes(path, Build());
        return path;
    }

    public static void File(TarWriter tar, string name, byte[] data, TarEntryType type = TarEntryType.RegularFile) =>
        tar.WriteEntry(new PaxTarEntry(type, name) { DataStream = new MemoryStream(data), Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite });

    /// <summary>Memory pages as CRIU dumps them: runs of zeros, text-like data and random bytes.</summary>
    public static byte[] RandomBytes(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static byte[] Pages(int size, int seed)
    {
        var data = new byte[size];
        var random = new Random(seed);
        for (var off = 0; off < size; off += 4096)
        {
            var page = data.AsSpan(off, Math.Min(4096, size - off));
            switch (random.Next(3))
            {
                case 0: break; // zero page
                case 1:
                    for (var i = 0; i < page.Length; i++) page[i] = (byte)"heap object cart item 0123456789 "[(i + off / 7) % 33];
                    break;
                default: random.NextBytes(page); break;
            }
        }
        return data;
    }

    private static byte[] RootfsDiff()
    {
        var output = new MemoryStream();
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
            File(tar, "tmp/cart.lock", Encoding.ASCII.GetBytes("1\n"));
        return output.ToArray();
    }
}

/// <summary>A store in a temp dir (checkpoints/ and staging/ side by side) with a manual clock.</summary>
internal sealed class StoreFixture : IDisposable
{
    public TempDir Dir { get; } = new("crsc-store-");
    public ManualTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    public string Checkpoints => Dir.Combine("checkpoints");
    public string Staging => Dir.Combine("staging");
    public string Incoming => Dir.Combine("incoming");
    /// <summary>The node key the store signs and checks manifests with.</summary>
    public Crsc.Storage.Security.NodeKey Key { get; } = Crsc.Storage.Security.NodeKey.Generate();

    public StoreFixture()
    {
        // crsc refuses pre-existing store directories that are not 0700, and tests create staging before the store
        Directory.CreateDirectory(Staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public DiskCheckpointStoreOptions Options(Func<DiskCheckpointStoreOptions, DiskCheckpointStoreOptions>? change = null)
    {
        var options = new DiskCheckpointStoreOptions { CheckpointDirectory = Checkpoints, NodeName = "node-a", CrscVersion = "0.1.0-test", Key = Key };
        return change is null ? options : change(options);
    }

    public DiskCheckpointStore Open(Func<DiskCheckpointStoreOptions, DiskCheckpointStoreOptions>? change = null) => new(Options(change), Time);

    public static string ManifestPath(CheckpointInfo c) => Path.Combine(Path.GetDirectoryName(c.ArchivePath)!, c.Id + DiskCheckpointStore.ManifestExtension);

    /// <summary>
    /// Rewrites the manifest of <paramref name="c"/> with <paramref name="edit"/> applied to its JSON, then signs it again
    /// with <paramref name="signWith"/> (as a crsc holding that key would have written it) or, when null, leaves its MAC as it was.
    /// </summary>
    public static void EditManifest(CheckpointInfo c, Func<string, string> edit, Crsc.Storage.Security.NodeKey? signWith = null)
    {
        var path = ManifestPath(c);
        var json = edit(File.ReadAllText(path));
        if (signWith is not null)
        {
            var doc = System.Text.Json.JsonSerializer.Deserialize(json, StorageJsonContext.Default.ManifestDocument)!;
            Crsc.Storage.Manifests.Sign(doc, signWith);
            json = System.Text.Encoding.UTF8.GetString(Crsc.Storage.Manifests.Serialize(doc));
        }
        File.WriteAllText(path, json);
    }

    /// <summary>A name as DiskCheckpointStore.NewStagingPath gives one (recovery removes only such names from staging).</summary>
    public static string StagingName() => $"shop_cart_cart-{Guid.NewGuid():N}"[..27] + ".tar";

    public string Stage(TestArchive archive, string? name = null) => archive.WriteTo(Staging, name ?? StagingName());

    /// <summary>Stages exactly these bytes (a TestArchive builds different bytes each time: tar headers carry the mtime).</summary>
    public string Stage(byte[] bytes)
    {
        Directory.CreateDirectory(Staging);
        var path = Path.Combine(Staging, StagingName());
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Every file under the checkpoint directory, relative, except the lock file.</summary>
    public List<string> StoreFiles() => Directory.EnumerateFiles(Checkpoints, "*", SearchOption.AllDirectories)
        .Select(f => Path.GetRelativePath(Checkpoints, f))
        .Where(f => f != DiskCheckpointStore.LockFileName)
        .Order(StringComparer.Ordinal)
        .ToList();

    public void Dispose() => Dir.Dispose();
}
