using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Runtime.V1;

namespace Crsc.Testing.Cri;

/// <summary>
/// Writes a small checkpoint archive laid out as CRI-O and containerd write theirs: <c>config.dump</c>
/// and <c>spec.dump</c> (JSON) at the top, the CRIU images under <c>checkpoint/</c>,
/// <c>rootfs-diff.tar</c> with the container's changed files, and <c>stats-dump</c>.
/// </summary>
public static class CheckpointArchiveWriter
{
    public static void Write(string path, Container container, PodSandbox sandbox, string runtimeName)
    {
        string tmp = path + ".partial";
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var tar = new TarWriter(file, TarEntryFormat.Pax, leaveOpen: false))
        {
            var now = DateTimeOffset.UtcNow;
            AddFile(tar, "config.dump", ConfigDump(container, runtimeName, now));
            AddFile(tar, "spec.dump", SpecDump(container, sandbox));
            AddDirectory(tar, "checkpoint");
            AddFile(tar, "checkpoint/inventory.img", CriuImage(0x58313116, 64));
            AddFile(tar, "checkpoint/pstree.img", CriuImage(0x50273030, 32));
            AddFile(tar, "checkpoint/core-1.img", CriuImage(0x55105940, 512));
            AddFile(tar, "checkpoint/pages-1.img", new byte[4096]);
            AddFile(tar, "checkpoint/dump.log", Encoding.UTF8.GetBytes("(00.000001) Dumping finished successfully\n"));
            AddFile(tar, "rootfs-diff.tar", RootfsDiff());
            AddFile(tar, "stats-dump", Encoding.UTF8.GetBytes("{\"freezing_time\":1200,\"frozen_time\":3400,\"memdump_time\":800,\"memwrite_time\":200,\"pages_written\":1}"));
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static byte[] ConfigDump(Container c, string runtimeName, DateTimeOffset now)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteString("name", $"k8s_{c.Metadata?.Name}_{c.PodSandboxId[..12]}");
            w.WriteString("rootfsImage", c.ImageRef);
            w.WriteString("rootfsImageRef", c.ImageRef);
            w.WriteString("rootfsImageName", c.Image?.Image ?? "");
            w.WriteString("runtime", "runc");
            w.WriteString("createdTime", DateTimeOffset.UnixEpoch.AddTicks(c.CreatedAt / 100));
            w.WriteString("checkpointedTime", now);
            w.WriteString("restoredTime", DateTimeOffset.UnixEpoch.UtcDateTime);
            w.WriteBoolean("restored", false);
            w.WriteString("containerManager", runtimeName);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static byte[] SpecDump(Container c, PodSandbox sb)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("ociVersion", "1.2.0");
            w.WriteStartObject("process");
            w.WriteStartArray("args");
            w.WriteStringValue("/bin/sh");
            w.WriteStringValue("-c");
            w.WriteStringValue("i=0; while true; do echo $i; i=$((i+1)); sleep 1; done");
            w.WriteEndArray();
            w.WriteString("cwd", "/");
            w.WriteEndObject();
            w.WriteStartObject("root");
            w.WriteString("path", "rootfs");
            w.WriteEndObject();
            w.WriteStartObject("annotations");
            // CRI-O's and containerd's names for the same facts
            w.WriteString("io.kubernetes.pod.name", sb.Metadata?.Name ?? "");
            w.WriteString("io.kubernetes.pod.namespace", sb.Metadata?.Namespace ?? "");
            w.WriteString("io.kubernetes.pod.uid", sb.Metadata?.Uid ?? "");
            w.WriteString("io.kubernetes.container.name", c.Metadata?.Name ?? "");
            w.WriteString("io.kubernetes.cri.container-type", "container");
            w.WriteString("io.kubernetes.cri.container-name", c.Metadata?.Name ?? "");
            w.WriteString("io.kubernetes.cri.sandbox-id", sb.Id);
            w.WriteString("io.kubernetes.cri.sandbox-name", sb.Metadata?.Name ?? "");
            w.WriteString("io.kubernetes.cri.sandbox-namespace", sb.Metadata?.Namespace ?? "");
            w.WriteString("io.kubernetes.cri.sandbox-uid", sb.Metadata?.Uid ?? "");
            w.WriteString("io.kubernetes.cri.image-name", c.Image?.Image ?? "");
            w.WriteEndObject();
            w.WriteStartObject("linux");
            w.WriteStartArray("namespaces");
            foreach (var ns in new[] { "pid", "ipc", "uts", "mount", "network" })
            {
                w.WriteStartObject();
                w.WriteString("type", ns);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>Bytes that start like a CRIU image (magic) and are otherwise filler.</summary>
    private static byte[] CriuImage(uint magic, int size)
    {
        var b = new byte[size];
        BitConverter.TryWriteBytes(b, 0x54564319u); // CRIU "img service" magic
        BitConverter.TryWriteBytes(b.AsSpan(4), magic);
        for (int i = 8; i < b.Length; i++) b[i] = (byte)(i * 31);
        return b;
    }

    private static byte[] RootfsDiff()
    {
        using var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            AddDirectory(tar, "tmp");
            AddFile(tar, "tmp/counter.txt", Encoding.UTF8.GetBytes("42\n"));
        }
        return ms.ToArray();
    }

    private static void AddFile(TarWriter tar, string name, byte[] content)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            ModificationTime = DateTimeOffset.UtcNow,
            DataStream = new MemoryStream(content),
        };
        tar.WriteEntry(entry);
    }

    private static void AddDirectory(TarWriter tar, string name)
    {
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name + "/")
        {
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            ModificationTime = DateTimeOffset.UtcNow,
        });
    }
}
