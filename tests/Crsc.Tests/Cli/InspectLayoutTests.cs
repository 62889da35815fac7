using System.Formats.Tar;
using Crsc.Cli;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc inspect</c> tells an archive's parts (metadata files, memory pages, rootfs diff, checkpoint directory) by the
/// names ingest tells them by: the checked entry name, whatever run of <c>./</c> a tar writer put in front.
/// </summary>
public sealed class InspectLayoutTests
{
    [Fact]
    public void Inspect_reads_the_parts_of_an_archive_whose_names_start_with_repeated_dot_slash()
    {
        var ms = new MemoryStream();
        using (var t = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            t.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "././checkpoint/"));
            InspectHostileTests.File(t, "././checkpoint/pages-1.img", new byte[4096]);
            InspectHostileTests.File(t, "././config.dump", """{"id":"abc","name":"app","runtime":"runc"}"""u8.ToArray());
            InspectHostileTests.File(t, "./././spec.dump", """{"annotations":{"io.kubernetes.pod.name":"web-1"}}"""u8.ToArray());
            InspectHostileTests.File(t, "././rootfs-diff.tar", new byte[1024]);
        }
        ms.Position = 0;

        var report = InspectCommand.Read(ms, CancellationToken.None, readToEnd: false);

        Assert.Empty(report.Warnings);
        Assert.Empty(report.Findings);
        Assert.Equal("app", report.ContainerName);
        Assert.Equal("web-1", report.PodName);
        Assert.Equal(4096, report.MemoryPagesBytes);
        Assert.Equal(1024, report.RootfsDiffBytes);
    }
}
