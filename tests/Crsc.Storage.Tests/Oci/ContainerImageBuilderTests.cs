using System.Formats.Tar;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Crsc.Storage.Oci;
using Crsc.Testing;

namespace Crsc.Storage.Tests.Oci;

/// <summary>
/// crsc's own image (<c>make image</c>): an OCI image layout tarball written by <see cref="ContainerImageBuilder"/> from a
/// root filesystem and a binary. Same inputs, same bytes; and what is inside is what the image spec and the runtimes'
/// importers read.
/// </summary>
public sealed class ContainerImageBuilderTests : IDisposable
{
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeSeconds(1_780_000_000);
    private static readonly string LongName = new('n', 120); // beyond ustar's 100 characters
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Sha(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>A small root filesystem: directories, files of several modes, a link, a long name.</summary>
    private string MakeRootfs(string name)
    {
        var root = _dir.Combine(name);
        Directory.CreateDirectory(Path.Combine(root, "usr", "lib", "x86_64-linux-gnu"));
        Directory.CreateDirectory(Path.Combine(root, "etc", "ssl", "certs"));
        Directory.CreateDirectory(Path.Combine(root, "usr", "share", LongName));
        File.WriteAllText(Path.Combine(root, "usr", "lib", "x86_64-linux-gnu", "libc.so.6"), "not really libc");
        File.SetUnixFileMode(Path.Combine(root, "usr", "lib", "x86_64-linux-gnu", "libc.so.6"), (UnixFileMode)0b111_101_101);
        File.WriteAllText(Path.Combine(root, "etc", "ssl", "certs", "ca-certificates.crt"), "-----BEGIN CERTIFICATE-----\n");
        File.WriteAllText(Path.Combine(root, "etc", "passwd"), "root:x:0:0:root:/root:/usr/sbin/nologin\n");
        File.WriteAllText(Path.Combine(root, "usr", "share", LongName, "copyright"), "Copyright");
        File.CreateSymbolicLink(Path.Combine(root, "usr", "lib", "x86_64-linux-gnu", "libc.so"), "libc.so.6");
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
        File.SetUnixFileMode(Path.Combine(root, "tmp"), (UnixFileMode)0b1_111_111_111);
        return root;
    }

    private string MakeBinary(string name, string content = "#!/bin/sh\necho fake crsc\n")
    {
        var path = _dir.Combine(name);
        File.WriteAllText(path, content);
        return path;
    }

    private static ContainerImageSpec Spec(string rootfs, string binary) => new()
    {
        Name = "localhost/crsc",
        Tag = "0.1.0",
        Created = Created,
        Platform = new CheckpointImagePlatform("linux", "amd64"),
        Layers =
        [
            new ContainerImageLayer(OciLayerWriter.FromDirectory(rootfs), "rootfs", "the base"),
            new ContainerImageLayer(OciLayerWriter.FromFile(binary, "usr/bin/crsc", (UnixFileMode)0b111_101_101), "binary", "crsc"),
        ],
        Env = ["PATH=/usr/bin"],
        Entrypoint = ["/usr/bin/crsc"],
        Cmd = ["daemon"],
        WorkingDir = "/",
        Labels = new Dictionary<string, string> { ["org.opencontainers.image.version"] = "0.1.0", ["a.first"] = "1" },
        CompressionLevel = 3,
    };

    [Fact]
    public async Task Two_builds_from_the_same_inputs_are_the_same_bytes()
    {
        var first = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(MakeRootfs("rootfs-a"), MakeBinary("crsc-a")),
            _dir.Combine("out-a", "crsc.oci.tar"), CancellationToken.None);

        // the same content made again later, elsewhere, with other times on the files: nothing of that may leak in
        await Task.Delay(1100);
        var rootfs = MakeRootfs("rootfs-b");
        var binary = MakeBinary("crsc-b");
        foreach (var f in Directory.GetFileSystemEntries(rootfs, "*", SearchOption.AllDirectories).Append(binary))
        {
            if (new FileInfo(f).LinkTarget is not null) continue;
            if (Directory.Exists(f)) Directory.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-3));
            else File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-3));
        }
        var second = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(rootfs, binary), _dir.Combine("out-b", "crsc.oci.tar"),
            CancellationToken.None);

        Assert.Equal(first.Manifest.Digest, second.Manifest.Digest);
        Assert.Equal(first.Config.Digest, second.Config.Digest);
        Assert.Equal(await File.ReadAllBytesAsync(first.Path), await File.ReadAllBytesAsync(second.Path));
        Assert.Equal("localhost/crsc:0.1.0", first.Reference);
    }

    [Fact]
    public async Task Another_binary_changes_only_the_binary_layer_and_what_names_it()
    {
        var rootfs = MakeRootfs("rootfs");
        var a = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(rootfs, MakeBinary("crsc-a")), _dir.Combine("a.tar"), CancellationToken.None);
        var b = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(rootfs, MakeBinary("crsc-b", "#!/bin/sh\necho other\n")),
            _dir.Combine("b.tar"), CancellationToken.None);
        Assert.NotEqual(a.Manifest.Digest, b.Manifest.Digest);
        Assert.Equal(a.Layers[0].Descriptor, b.Layers[0].Descriptor); // the Debian base stays the same blob
        Assert.NotEqual(a.Layers[1].Descriptor.Digest, b.Layers[1].Descriptor.Digest);
    }

    [Fact]
    public async Task The_tarball_is_an_OCI_image_layout_whose_index_names_the_image()
    {
        var image = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(MakeRootfs("rootfs"), MakeBinary("crsc")),
            _dir.Combine("crsc.oci.tar"), CancellationToken.None);
        var files = ReadTar(image.Path);

        // entries in order, root-owned, all at the image's time
        Assert.Equal(["blobs/", "blobs/sha256/", .. files.Keys.Where(k => k.StartsWith("blobs/sha256/") && k.Length > 13).Order(StringComparer.Ordinal),
            "index.json", "oci-layout"], ReadTarHeaders(image.Path).Select(h => h.Name));
        Assert.All(ReadTarHeaders(image.Path), h => Assert.Equal((0, 0, Created), (h.Uid, h.Gid, h.ModificationTime)));

        Assert.Equal("""{"imageLayoutVersion":"1.0.0"}""", Encoding.UTF8.GetString(files["oci-layout"]));
        // every blob is stored under its own digest
        foreach (var (name, content) in files.Where(f => f.Key.StartsWith("blobs/sha256/") && !f.Key.EndsWith('/')))
            Assert.Equal("sha256:" + name["blobs/sha256/".Length..], Sha(content));

        using var index = JsonDocument.Parse(files["index.json"]);
        Assert.Equal("application/vnd.oci.image.index.v1+json", index.RootElement.GetProperty("mediaType").GetString());
        var entry = Assert.Single(index.RootElement.GetProperty("manifests").EnumerateArray().ToList());
        Assert.Equal(image.Manifest.Digest, entry.GetProperty("digest").GetString());
        Assert.Equal(OciMediaTypes.ImageManifest, entry.GetProperty("mediaType").GetString());
        // the full name: containerd's importer names the image by it as written, podman too
        Assert.Equal("localhost/crsc:0.1.0", entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString());
        Assert.Equal("amd64", entry.GetProperty("platform").GetProperty("architecture").GetString());

        var manifestBytes = Blob(files, image.Manifest.Digest);
        Assert.Equal(image.Manifest.Size, manifestBytes.Length);
        using var manifest = JsonDocument.Parse(manifestBytes);
        Assert.Equal(image.Config.Digest, manifest.RootElement.GetProperty("config").GetProperty("digest").GetString());
        var layers = manifest.RootElement.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(2, layers.Count);
        Assert.All(layers, l => Assert.Equal("application/vnd.oci.image.layer.v1.tar+zstd", l.GetProperty("mediaType").GetString()));

        using var config = JsonDocument.Parse(Blob(files, image.Config.Digest));
        var c = config.RootElement;
        Assert.Equal("2026-05-28T20:26:40Z", c.GetProperty("created").GetString());
        Assert.Equal(["/usr/bin/crsc"], c.GetProperty("config").GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["daemon"], c.GetProperty("config").GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["a.first", "org.opencontainers.image.version"], c.GetProperty("config").GetProperty("Labels").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["the base", "crsc"], c.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("comment").GetString()));
        // diff_ids: the digests of the layers' tars, decompressed
        var diffIds = c.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()).ToList();
        for (var i = 0; i < 2; i++)
        {
            var blob = Blob(files, layers[i].GetProperty("digest").GetString()!);
            Assert.Equal(layers[i].GetProperty("size").GetInt64(), blob.Length);
            Assert.Equal(diffIds[i], Sha(Decompress(blob)));
        }
    }

    [Fact]
    public async Task Layers_hold_the_tree_sorted_root_owned_at_one_time_with_modes_and_links_kept()
    {
        var image = await ContainerImageBuilder.WriteLayoutTarAsync(Spec(MakeRootfs("rootfs"), MakeBinary("crsc")),
            _dir.Combine("crsc.oci.tar"), CancellationToken.None);
        var files = ReadTar(image.Path);
        var baseLayer = ReadTarHeaders(Decompress(Blob(files, image.Layers[0].Descriptor.Digest)));
        Assert.Equal(
        [
            "etc/", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt", "tmp/", "usr/", "usr/lib/",
            "usr/lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/libc.so", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/",
            $"usr/share/{LongName}/", $"usr/share/{LongName}/copyright",
        ], baseLayer.Select(h => h.Name));
        Assert.All(baseLayer, h => Assert.Equal((0, 0, "", "", Created), (h.Uid, h.Gid, h.UserName, h.GroupName, h.ModificationTime)));
        var link = baseLayer.Single(h => h.Name.EndsWith("libc.so"));
        Assert.Equal((TarEntryType.SymbolicLink, "libc.so.6"), (link.EntryType, link.LinkName));
        Assert.Equal((UnixFileMode)0b111_101_101, baseLayer.Single(h => h.Name.EndsWith("libc.so.6")).Mode);
        Assert.Equal((UnixFileMode)0b1_111_111_111, baseLayer.Single(h => h.Name == "tmp/").Mode);
        Assert.Equal(TarEntryType.Directory, baseLayer.Single(h => h.Name == "etc/").EntryType);

        var binaryLayer = ReadTarHeaders(Decompress(Blob(files, image.Layers[1].Descriptor.Digest)));
        Assert.Equal(["usr/", "usr/bin/", "usr/bin/crsc"], binaryLayer.Select(h => h.Name));
        Assert.Equal((UnixFileMode)0b111_101_101, binaryLayer[2].Mode);
        Assert.Equal(TarEntryType.RegularFile, binaryLayer[2].EntryType);
    }

    [Fact]
    public void A_root_filesystem_with_a_socket_or_fifo_is_refused()
    {
        var root = MakeRootfs("rootfs");
        var socketPath = Path.Combine(root, "etc", "s");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var e = Assert.Throws<InvalidDataException>(() => OciLayerWriter.FromDirectory(root));
        Assert.Contains(socketPath, e.Message);
    }

    [Fact]
    public async Task A_failed_build_leaves_no_tarball_and_no_scratch_files()
    {
        var output = _dir.Combine("out", "crsc.oci.tar");
        var spec = Spec(MakeRootfs("rootfs"), MakeBinary("crsc"));
        File.Delete(_dir.Combine("crsc")); // the binary is gone by the time the layer is written
        await Assert.ThrowsAsync<FileNotFoundException>(() => ContainerImageBuilder.WriteLayoutTarAsync(spec, output, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Combine("out")));
    }

    [Theory]
    [InlineData("Localhost/Crsc", "0.1.0")]
    [InlineData("localhost/crsc", "-bad")]
    public async Task A_name_that_is_no_image_reference_is_refused(string name, string tag)
    {
        var spec = Spec(MakeRootfs("rootfs"), MakeBinary("crsc")) with { Name = name, Tag = tag };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => ContainerImageBuilder.WriteLayoutTarAsync(spec, _dir.Combine("x.tar"), CancellationToken.None));
        Assert.Contains($"{name}:{tag}", e.Message);
    }

    private static byte[] Blob(Dictionary<string, byte[]> files, string digest) => files["blobs/sha256/" + digest["sha256:".Length..]];

    private static byte[] Decompress(byte[] zstd)
    {
        using var stream = new ZstdDecompressStream(new MemoryStream(zstd));
        var result = new MemoryStream();
        stream.CopyTo(result);
        return result.ToArray();
    }

    private static Dictionary<string, byte[]> ReadTar(string path)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var reader = new TarReader(File.OpenRead(path));
        while (reader.GetNextEntry() is { } e)
        {
            var content = new MemoryStream();
            e.DataStream?.CopyTo(content);
            files[e.Name] = content.ToArray();
        }
        return files;
    }

    private sealed record Header(string Name, TarEntryType EntryType, UnixFileMode Mode, int Uid, int Gid, string UserName, string GroupName,
        DateTimeOffset ModificationTime, string LinkName);

    private static List<Header> ReadTarHeaders(string path) => ReadTarHeaders(File.ReadAllBytes(path));

    private static List<Header> ReadTarHeaders(byte[] tar)
    {
        var headers = new List<Header>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } e)
        {
            var gnu = Assert.IsType<GnuTarEntry>(e);
            headers.Add(new Header(e.Name, e.EntryType, e.Mode, e.Uid, e.Gid, gnu.UserName, gnu.GroupName, e.ModificationTime, e.LinkName));
        }
        return headers;
    }
}
