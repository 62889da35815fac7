using Crsc.Storage;
using System.Runtime.InteropServices;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Controllers.Tests.NodeAgent;

/// <summary>
/// What the checkpoint runner does with the archive path and the CRIU log path a kubelet (or whatever answers at
/// kubelet.url) names, on the real file system: files in a temporary directory of the test's own stand for the
/// kubelet's checkpoint directory and for files elsewhere on the node that must be neither read nor removed.
/// </summary>
public sealed class KubeletArchiveTests : IDisposable
{
    private const string Secret = "root:x:0:0:root:/root:/bin/bash\n";
    private readonly TempDir _tmp = new();
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly FakeContainerRuntime _runtime = new();
    private readonly FakeCheckpointStore _store;
    private readonly string _kubeletDir;
    private readonly string _outside;
    private CheckpointRunner? _runner;

    public KubeletArchiveTests()
    {
        _store = new FakeCheckpointStore(_time);
        _kubeletDir = Directory.CreateDirectory(_tmp.Combine("kubelet", "checkpoints")).FullName;
        _outside = _tmp.Combine("etc-passwd");
        File.WriteAllText(_outside, Secret);
        _runtime.AddContainer("shop", "web-0", "app");
    }

    public void Dispose()
    {
        _runner?.Dispose();
        _tmp.Dispose();
    }

    private CheckpointRunner Runner(string? kubeletDir = null, IReadOnlyList<string>? logLocations = null)
    {
        var options = new CheckpointRunnerOptions { NodeName = "n1", KubeletCheckpointDirectory = kubeletDir ?? _kubeletDir };
        if (logLocations is not null) options = options with { CriuLogLocations = logLocations };
        _runner = new CheckpointRunner(_runtime, _runtime, _store, options, _time, staging: new FileStagingArea());
        return _runner;
    }

    /// <summary>The kubelet answers <paramref name="path"/> as the archive.</summary>
    private void KubeletAnswers(string path) =>
        _runtime.OnCheckpoint = (_, _, _, _) => Task.FromResult(new CheckpointArchive(path));

    private Task<CheckpointOutcome> CheckpointAsync(CheckpointRunner runner) =>
        runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);

    private void AssertUntouched(string path)
    {
        Assert.True(File.Exists(path), $"{path} was removed");
        Assert.Equal(Secret, File.ReadAllText(path));
    }

    public static TheoryData<string> PathsOutside => new()
    {
        "{outside}",                              // /etc/passwd-like: anywhere else on the node
        "{dir}/../../etc-passwd",                 // out of the directory with ..
        "{dir}/./../../etc-passwd",
        "{dir}//../../etc-passwd",
        "{dir}/sub/../../../etc-passwd",
        "etc-passwd",                             // relative
        "{dir}",                                  // the directory itself
        "{dir}/",
    };

    [Theory]
    [MemberData(nameof(PathsOutside))]
    public async Task An_archive_path_outside_the_kubelets_checkpoint_directory_fails_the_checkpoint_and_the_file_is_neither_read_nor_removed(string answer)
    {
        var path = answer.Replace("{outside}", _outside).Replace("{dir}", _kubeletDir);
        KubeletAnswers(path);

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner()));

        Assert.Contains($"archive '{path}' refused", e.Message);
        Assert.Contains("neither read nor removed", e.Message);
        Assert.Equal("ArchiveRefused", e.Code);
        Assert.False(e.Transient);
        Assert.Empty(_store.Ingests);
        AssertUntouched(_outside);
    }

    [Fact]
    public async Task A_symbolic_link_in_the_directory_pointing_outside_is_refused_and_neither_it_nor_its_target_is_touched()
    {
        var link = Path.Join(_kubeletDir, "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar");
        File.CreateSymbolicLink(link, _outside);
        KubeletAnswers(link);

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner()));

        Assert.Contains("is a symbolic link, not a regular file", e.Message);
        Assert.Empty(_store.Ingests);
        AssertUntouched(_outside);
        Assert.Equal(_outside, new FileInfo(link).LinkTarget);
    }

    [Fact]
    public async Task A_checkpoint_directory_reached_through_a_symbolic_link_is_refused()
    {
        // the kubelet's directory is fine, but the configured one reaches it through a link (e.g. swapped in by someone)
        var linkedDir = _tmp.Combine("linked");
        Directory.CreateSymbolicLink(linkedDir, _tmp.Path);
        var configured = Path.Join(linkedDir, "kubelet", "checkpoints");
        var name = "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar";
        var archive = Path.Join(_kubeletDir, name);
        File.WriteAllText(archive, Secret);
        KubeletAnswers(Path.Join(configured, name));

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner(configured)));

        Assert.Contains($"'{linkedDir}' is a symbolic link, not a directory", e.Message);
        Assert.Empty(_store.Ingests);
        AssertUntouched(archive);
    }

    [Fact]
    public async Task A_directory_or_a_fifo_named_as_the_archive_is_refused()
    {
        var sub = Directory.CreateDirectory(Path.Join(_kubeletDir, "sub")).FullName;
        KubeletAnswers(sub);
        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner()));
        Assert.Contains("is a directory, not a regular file", e.Message);

        var fifo = Path.Join(_kubeletDir, "fifo.tar");
        Assert.Equal(0, MkFifo(fifo, 0b110_000_000));
        KubeletAnswers(fifo);
        e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner()));
        Assert.Contains("is a FIFO, not a regular file", e.Message);
        Assert.Empty(_store.Ingests);
        Assert.True(Directory.Exists(sub));
        Assert.True(File.Exists(fifo));
    }

    [Fact]
    public async Task With_cri_an_answer_other_than_the_staging_path_is_refused()
    {
        KubeletAnswers(_outside);
        _runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = "n1" }, _time,
            staging: new FileStagingArea());

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(_runner));

        Assert.Contains("named another path", e.Message);
        Assert.Empty(_store.Ingests);
        AssertUntouched(_outside);
    }

    [Fact]
    public async Task The_kubelets_archive_is_ingested_with_its_identity_and_removed_afterwards()
    {
        var archive = Path.Join(_kubeletDir, "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar");
        File.WriteAllText(archive, "tar");
        KubeletAnswers(archive);

        await CheckpointAsync(Runner());

        var ingest = Assert.Single(_store.Ingests);
        Assert.Equal(archive, ingest.Staged);
        Assert.NotNull(ingest.Options.ExpectedFile);
        Assert.False(ingest.Options.RemoveStaged);
        Assert.False(File.Exists(archive));
    }

    [Fact]
    public async Task An_archive_replaced_while_it_was_stored_is_left_in_place()
    {
        var archive = Path.Join(_kubeletDir, "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar");
        File.WriteAllText(archive, "tar");
        KubeletAnswers(archive);
        _store.OnIngest = path =>
        {
            // another file takes the name: a new inode
            File.Move(path, path + ".old");
            File.WriteAllText(path, Secret);
        };

        await CheckpointAsync(Runner());

        AssertUntouched(archive);
    }

    [Fact]
    public async Task An_archive_not_named_the_way_the_kubelet_names_this_containers_checkpoints_is_ingested_but_left_in_place()
    {
        var archive = Path.Join(_kubeletDir, "checkpoint-db-0_shop-app-2026-01-01T00:00:00Z.tar"); // another pod's
        File.WriteAllText(archive, Secret);
        KubeletAnswers(archive);

        await CheckpointAsync(Runner());

        Assert.Single(_store.Ingests);
        AssertUntouched(archive);
    }

    [Fact]
    public async Task A_log_file_outside_the_runtimes_log_locations_is_never_read()
    {
        var log = _tmp.Combine("root-only.log");
        File.WriteAllText(log, Secret);
        var container = (await _runtime.ListContainersAsync(null, default)).Single();
        var known = _tmp.Combine("{id}", "dump.log");
        Directory.CreateDirectory(_tmp.Combine(container.Id));
        var inKnown = _tmp.Combine(container.Id, "dump.log");
        File.WriteAllText(inKnown, "Error (criu/cr-dump.c:1): the container's own log\n");

        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "kubelet said 500", "500", $"checkpoint failed: criu failed, log file: {log}");
        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Runner(logLocations: [known])));
        Assert.Null(e.CriuLog);
        Assert.DoesNotContain("root:x", e.Message);

        // the same runner reads the log where the runtime keeps this container's: the rule, not a broken reader
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "kubelet said 500", "500", $"checkpoint failed: criu failed, log file: {inKnown}");
        e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(_runner!));
        Assert.Contains("the container's own log", e.CriuLog);
    }

    [Fact]
    public async Task A_symbolic_link_at_a_known_log_location_is_not_followed()
    {
        var container = (await _runtime.ListContainersAsync(null, default)).Single();
        Directory.CreateDirectory(_tmp.Combine(container.Id));
        var link = _tmp.Combine(container.Id, "dump.log");
        File.CreateSymbolicLink(link, _outside);
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "kubelet said 500", "500", $"criu failed, log file: {link}");

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            CheckpointAsync(Runner(logLocations: [_tmp.Combine("{id}", "dump.log")])));

        Assert.Null(e.CriuLog);
    }

    [Fact]
    public void The_file_staging_area_checks_each_component_and_removes_only_the_same_file()
    {
        var area = new FileStagingArea();
        var file = Path.Join(_kubeletDir, "a.tar");
        File.WriteAllText(file, "x");
        var id = area.CheckFileInDirectory(_kubeletDir, "a.tar");
        Assert.Throws<FileNotFoundException>(() => area.CheckFileInDirectory(_kubeletDir, "missing.tar"));
        Assert.Throws<ArgumentException>(() => area.CheckFileInDirectory(_kubeletDir, "../etc-passwd"));

        Assert.NotNull(area.DeleteIfSame(_kubeletDir, "a.tar", id with { Inode = id.Inode + 1 }));
        Assert.True(File.Exists(file));
        Assert.Null(area.DeleteIfSame(_kubeletDir, "a.tar", id));
        Assert.False(File.Exists(file));
        Assert.NotNull(area.DeleteIfSame(_kubeletDir, "a.tar", id)); // gone: nothing to do, and said so
    }

    [Theory]
    [InlineData("checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar", true)]
    [InlineData("checkpoint-web-0_shop-app-2026-01-01T01:00:00+01:00.tar", true)]
    [InlineData("checkpoint-web-0_shop-app-.tar", false)]
    [InlineData("checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar.gz", false)]
    [InlineData("checkpoint-web-0_shop-sidecar-2026-01-01T00:00:00Z.tar", false)]
    [InlineData("checkpoint-web-1_shop-app-2026-01-01T00:00:00Z.tar", false)]
    [InlineData("passwd", false)]
    public void The_kubelets_archive_names(string name, bool expected) =>
        Assert.Equal(expected, CheckpointRunner.IsKubeletArchiveName(name, "shop", "web-0", "app"));

    [DllImport("libc", EntryPoint = "mkfifo")]
    private static extern int MkFifo(string path, uint mode);
}
