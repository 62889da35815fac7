using System.Text.Json;
using Crsc.Cli;
using Crsc.Controllers.Storage;

namespace Crsc.Tests.Cli;

/// <summary><c>crsc list</c>, <c>crsc inspect</c> and <c>crsc gc</c> against a real store with realistic archives.</summary>
public sealed class StoreCommandsTests : IDisposable
{
    private readonly CliStore _s = new();

    public void Dispose() => _s.Dispose();

    [Fact]
    public async Task List_reads_the_store_while_the_daemon_holds_its_lock()
    {
        using var store = _s.Open();
        var a = await CliStore.AddAsync(store, "shop", "cart", "app");
        _s.Time.Advance(TimeSpan.FromHours(3));
        var b = await CliStore.AddAsync(store, "shop", "orders", "app", CheckpointCompression.None);
        _s.Time.Advance(TimeSpan.FromHours(1));
        var c = await CliStore.AddAsync(store, "default", "counter", "counter");

        // the store (the "daemon") stays open: list must not need its lock
        var (code, output, err) = await CliStore.RunAsync(["list", .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("ID", lines[0]);
        foreach (var col in new[] { "NAMESPACE/WORKLOAD/CONTAINER", "NODE", "SIZE", "DIGEST", "AGE" }) Assert.Contains(col, lines[0]);
        // newest first, with node, short digest and age
        Assert.StartsWith(c.Id, lines[1]);
        Assert.Contains("default/counter/counter", lines[1]);
        Assert.Contains("node-a", lines[1]);
        Assert.Contains(c.Digest[7..19], lines[1]);
        Assert.DoesNotContain(c.Digest[7..40], lines[1]);
        Assert.StartsWith(b.Id, lines[2]);
        Assert.StartsWith(a.Id, lines[3]);
        Assert.EndsWith("d", lines[3].TrimEnd()); // ten days old: age in days
        // columns are aligned: every row's namespace column starts at the same offset
        var col1 = lines[0].IndexOf("NAMESPACE", StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.Equal(' ', l[col1 - 1]));
    }

    [Fact]
    public async Task List_filters_by_namespace_and_workload_and_prints_json()
    {
        using var store = _s.Open();
        var a = await CliStore.AddAsync(store, "shop", "cart", "app");
        await CliStore.AddAsync(store, "shop", "orders", "app");
        await CliStore.AddAsync(store, "default", "counter", "counter");

        var (code, output, _) = await CliStore.RunAsync(["list", "shop/cart", "--json", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Ok, code);
        using var doc = JsonDocument.Parse(output);
        var item = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(a.Id, item.GetProperty("id").GetString());
        Assert.Equal(a.Digest, item.GetProperty("digest").GetString());
        Assert.Equal(a.ArchivePath, item.GetProperty("archivePath").GetString());
        Assert.Equal("zstd", item.GetProperty("compression").GetString());

        (code, output, _) = await CliStore.RunAsync(["list", "shop", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Equal(3, output.TrimEnd().Split('\n').Length);
        Assert.DoesNotContain("default/", output);
    }

    [Fact]
    public async Task List_of_an_absent_store_is_empty_and_bad_filters_are_usage_errors()
    {
        var (code, output, err) = await CliStore.RunAsync(["list", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Equal("", output);
        Assert.Contains("No checkpoint store at", err);
        Assert.False(Directory.Exists(_s.CheckpointDir)); // read-only: nothing created

        (code, _, err) = await CliStore.RunAsync(["list", "Shop/../x", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Usage, code);
        (code, _, err) = await CliStore.RunAsync(["list", "Shop", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("namespace 'Shop'", err);
    }

    [Fact]
    public async Task Inspect_by_id_shows_what_checkpointctl_shows_and_verifies_the_digest()
    {
        using var store = _s.Open();
        var a = await CliStore.AddAsync(store, "shop", "cart", "app");

        var (code, output, err) = await CliStore.RunAsync(["inspect", a.Id, .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains($"Checkpoint:", output);
        Assert.Contains(a.Id, output);
        Assert.Matches(@"Container:\s+app \(id c0ffee012345\)", output);
        Assert.Matches(@"Image:\s+docker.io/library/busybox:1.36", output);
        Assert.Contains("sha256:3f57d9401f8d", output);
        Assert.Matches(@"Runtime:\s+runc", output);
        Assert.Matches(@"Pod:\s+shop/cart-0 \(uid 0d1e2f3a-1111-2222-3333-444455556666\)", output);
        Assert.Matches(@"Memory pages:\s+4.0 KiB", output);
        Assert.Contains("(zstd)", output);
        Assert.Contains(a.Digest + " (verified)", output);
        Assert.Contains("checkpoint/pstree.img", output);
        Assert.Contains("config.dump", output);
        Assert.DoesNotContain("tmp/counter.txt", output); // inside rootfs-diff.tar, not a file of the archive
        Assert.Contains("Process tree:", output);
    }

    [Fact]
    public async Task List_and_inspect_show_whether_the_node_key_vouches_for_each_manifest()
    {
        using var store = _s.Open();
        var good = await CliStore.AddAsync(store, "shop", "cart", "app");
        _s.Time.Advance(TimeSpan.FromHours(1));
        var changed = await CliStore.AddAsync(store, "shop", "orders", "app");
        var manifest = Path.Combine(Path.GetDirectoryName(changed.ArchivePath)!, changed.Id + ".json");
        await File.WriteAllTextAsync(manifest, (await File.ReadAllTextAsync(manifest)).Replace("\"nodeName\": \"node-a\"", "\"nodeName\": \"node-b\"", StringComparison.Ordinal));

        var (code, output, err) = await CliStore.RunAsync(["list", .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        var lines = output.TrimEnd().Split('\n');
        Assert.Contains("MAC", lines[0]);
        Assert.EndsWith("INVALID-MAC", lines.Single(l => l.StartsWith(changed.Id, StringComparison.Ordinal)).TrimEnd());
        Assert.EndsWith("verified", lines.Single(l => l.StartsWith(good.Id, StringComparison.Ordinal)).TrimEnd());

        (code, output, _) = await CliStore.RunAsync(["list", "--json", .. _s.ReadFlags]);
        using (var doc = JsonDocument.Parse(output))
        {
            var verdicts = doc.RootElement.EnumerateArray().ToDictionary(i => i.GetProperty("id").GetString()!, i => i.GetProperty("authenticity").GetString());
            Assert.Equal("invalid", verdicts[changed.Id]);
            Assert.Equal("verified", verdicts[good.Id]);
        }

        (code, output, err) = await CliStore.RunAsync(["inspect", changed.Id, .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Matches($@"MAC:\s+INVALID-MAC \(key id {_s.Key.Id}\): .*invalid MAC", output);
        (_, output, _) = await CliStore.RunAsync(["inspect", good.Id, .. _s.ReadFlags]);
        Assert.Matches($@"MAC:\s+verified \(key id {_s.Key.Id}\)\n", output);

        // without the node key (another state directory: none there) nothing can be checked, and no key is made
        var elsewhere = _s.Dir.Combine("other-state");
        (code, output, _) = await CliStore.RunAsync(["list", "--checkpoint-dir", _s.CheckpointDir, "--state-dir", elsewhere]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.All(output.TrimEnd().Split('\n').Skip(1), l => Assert.EndsWith("unchecked", l.TrimEnd()));
        Assert.False(Directory.Exists(elsewhere));
    }

    [Fact]
    public async Task Inspect_a_corrupt_checkpoint_fails()
    {
        using var store = _s.Open(CheckpointCompression.None);
        var a = await CliStore.AddAsync(store, "shop", "cart", "app");
        // flip a byte inside checkpoint/pages-1.img's data, so the tar still parses and only the digest tells
        var bytes = await File.ReadAllBytesAsync(a.ArchivePath);
        var name = System.Text.Encoding.ASCII.GetBytes("checkpoint/pages-1.img\0");
        var at = bytes.AsSpan().LastIndexOf(name);
        Assert.True(at > 0);
        bytes[at - at % 512 + 512 + 100] ^= 0xff;
        await File.WriteAllBytesAsync(a.ArchivePath, bytes);
        var (code, _, err) = await CliStore.RunAsync(["inspect", a.Id, .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("corrupt", err);
    }

    [Fact]
    public async Task Inspect_an_archive_file_tar_or_zst_as_json()
    {
        using var store = _s.Open();
        var zst = await CliStore.AddAsync(store, "shop", "cart", "app");
        var tar = await CliStore.AddAsync(store, "shop", "cart", "app", CheckpointCompression.None);

        foreach (var (path, compression) in new[] { (zst.ArchivePath, "zstd"), (tar.ArchivePath, "none") })
        {
            var (code, output, err) = await CliStore.RunAsync(["inspect", path, "--json"]);
            Assert.True(code == ExitCodes.Ok, err);
            using var doc = JsonDocument.Parse(output);
            var r = doc.RootElement;
            Assert.Equal("file", r.GetProperty("source").GetString());
            Assert.Equal(compression, r.GetProperty("compression").GetString());
            Assert.Equal("app", r.GetProperty("containerName").GetString());
            Assert.Equal("cart-0", r.GetProperty("podName").GetString());
            Assert.Equal("runc", r.GetProperty("runtime").GetString());
            Assert.Equal(4096, r.GetProperty("memoryPagesBytes").GetInt64());
            Assert.Equal(new FileInfo(path).Length, r.GetProperty("archiveBytes").GetInt64());
            Assert.Contains(r.GetProperty("files").EnumerateArray(), f => f.GetProperty("name").GetString() == "checkpoint/pages-1.img");
            Assert.Empty(r.GetProperty("warnings").EnumerateArray());
        }
    }

    [Fact]
    public async Task Inspect_of_an_unknown_id_or_path_fails_clearly()
    {
        var (code, _, err) = await CliStore.RunAsync(["inspect", "20261122T041809Z-1a2b3c4d", .. _s.ReadFlags]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("no checkpoint with id '20261122T041809Z-1a2b3c4d'", err);

        (code, _, err) = await CliStore.RunAsync(["inspect", _s.Dir.Combine("nope.tar")]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("neither a checkpoint id of the store nor an archive file", err);

        var junk = _s.Dir.Combine("junk.tar");
        await File.WriteAllTextAsync(junk, "this is not a tar archive at all, just some text that goes on and on" + new string('x', 600));
        (code, _, err) = await CliStore.RunAsync(["inspect", junk]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("junk.tar", err);
    }

    [Fact]
    public async Task Inspect_of_a_file_that_is_not_a_tar_says_so_in_its_own_words()
    {
        // the tar reader's exception messages are bare resource keys in the AOT binary ("TarInvalidNumber, ")
        var passwd = _s.Dir.Combine("passwd");
        await File.WriteAllTextAsync(passwd, string.Concat(Enumerable.Repeat("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", 12)));
        var (code, output, err) = await CliStore.RunAsync(["inspect", passwd]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Equal("", output);
        Assert.Equal($"crsc: '{passwd}' is not a crsc checkpoint archive: it is not a tar file (nor a zstd-compressed tar): its header blocks are not tar headers\n",
            err.ReplaceLineEndings("\n"));

        if (File.Exists("/etc/passwd"))
        {
            (code, _, err) = await CliStore.RunAsync(["inspect", "/etc/passwd"]);
            Assert.Equal(ExitCodes.Failure, code);
            Assert.StartsWith("crsc: '/etc/passwd' is not a crsc checkpoint archive: it ", err);
        }

        // a real archive cut short inside an entry
        using (var store = _s.Open(CheckpointCompression.None))
        {
            var a = await CliStore.AddAsync(store, "shop", "cart", "app");
            var cut = _s.Dir.Combine("cut.tar");
            await File.WriteAllBytesAsync(cut, (await File.ReadAllBytesAsync(a.ArchivePath))[..1000]);
            (code, _, err) = await CliStore.RunAsync(["inspect", cut]);
            Assert.Equal(ExitCodes.Failure, code);
            Assert.Equal($"crsc: '{cut}' is not a crsc checkpoint archive: it ends in the middle of a tar entry (cut short, or not a tar file)\n",
                err.ReplaceLineEndings("\n"));
        }
    }

    [Fact]
    public async Task Gc_dry_run_reports_and_deletes_nothing_then_gc_deletes()
    {
        CheckpointInfo a, b, c;
        using (var store = _s.Open())
        {
            a = await CliStore.AddAsync(store, "shop", "cart", "app");
            _s.Time.Advance(TimeSpan.FromHours(1));
            b = await CliStore.AddAsync(store, "shop", "cart", "app");
            _s.Time.Advance(TimeSpan.FromHours(1));
            c = await CliStore.AddAsync(store, "shop", "cart", "app");
        }
        var before = Directory.GetFiles(_s.CheckpointDir, "*", SearchOption.AllDirectories).Order().ToArray();

        var (code, output, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", "--dry-run", .. _s.StoreFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains("would delete", output);
        Assert.Contains(a.Id, output);
        Assert.Contains(b.Id, output);
        Assert.DoesNotContain(c.Id, output);
        Assert.Contains("beyond the newest 1", output);
        Assert.Contains("Dry run: nothing was deleted.", output);
        Assert.Equal(before, Directory.GetFiles(_s.CheckpointDir, "*", SearchOption.AllDirectories).Order().ToArray());

        (code, output, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", "--json", .. _s.StoreFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        using var doc = JsonDocument.Parse(output);
        Assert.False(doc.RootElement.GetProperty("dryRun").GetBoolean());
        Assert.Equal([a.Id, b.Id], doc.RootElement.GetProperty("deleted").EnumerateArray().Select(d => d.GetProperty("id").GetString()!).Order());
        Assert.All(doc.RootElement.GetProperty("deleted").EnumerateArray(), d => Assert.Equal("KeepLast", d.GetProperty("reason").GetString()));
        Assert.False(File.Exists(a.ArchivePath));
        Assert.False(File.Exists(b.ArchivePath));
        Assert.True(File.Exists(c.ArchivePath));
    }

    [Fact]
    public async Task Gc_dry_run_writes_nothing_and_no_gc_changes_the_mode_of_a_directory_it_did_not_create()
    {
        // no store: nothing is created
        var (code, _, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", "--dry-run", .. _s.StoreFlags]);
        Assert.True(code == 0, err);
        Assert.False(Directory.Exists(_s.CheckpointDir));
        Assert.False(Directory.Exists(_s.StagingDir));

        // a store without its staging directory and lock file: a dry run creates neither
        using (var store = _s.Open()) await CliStore.AddAsync(store, "shop", "cart", "cart");
        Directory.Delete(_s.StagingDir);
        File.Delete(Path.Combine(_s.CheckpointDir, ".crsc-store.lock"));
        (code, _, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", "--dry-run", .. _s.StoreFlags]);
        Assert.True(code == 0, err);
        Assert.False(Directory.Exists(_s.StagingDir));
        Assert.False(File.Exists(Path.Combine(_s.CheckpointDir, ".crsc-store.lock")));

        // a group/world-readable store directory is refused, dry run or not, and its mode is left as it was
        var open = (UnixFileMode)0b111_101_101;
        File.SetUnixFileMode(_s.CheckpointDir, open);
        foreach (var dry in new[] { true, false })
        {
            (code, _, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", .. dry ? ["--dry-run"] : Array.Empty<string>(), .. _s.StoreFlags]);
            Assert.NotEqual(0, code);
            Assert.Contains(_s.CheckpointDir, err);
            Assert.Contains("group or others", err);
            Assert.Equal(open, File.GetUnixFileMode(_s.CheckpointDir));
        }
        Assert.False(Directory.Exists(_s.StagingDir));
    }

    [Fact]
    public async Task Gc_refuses_while_the_daemon_holds_the_store_and_validates_its_rules()
    {
        using var store = _s.Open();
        var a = await CliStore.AddAsync(store, "shop", "cart", "app");
        await CliStore.AddAsync(store, "shop", "cart", "app");

        var (code, _, err) = await CliStore.RunAsync(["gc", "--keep-last", "1", .. _s.StoreFlags]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("locked", err);
        Assert.Contains("Nothing was deleted", err);
        Assert.True(File.Exists(a.ArchivePath));

        (code, _, err) = await CliStore.RunAsync(["gc", .. _s.StoreFlags]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("at least one rule", err);
        (code, _, err) = await CliStore.RunAsync(["gc", "--max-age", "soon", .. _s.StoreFlags]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--max-age 'soon'", err);
        (code, _, _) = await CliStore.RunAsync(["gc", "--keep-last", "0"]);
        Assert.Equal(ExitCodes.Usage, code);
        (code, _, _) = await CliStore.RunAsync(["gc", "--max-bytes", "lots"]);
        Assert.Equal(ExitCodes.Usage, code);
    }

    [Fact]
    public async Task Gc_by_age_says_why()
    {
        using (var store = _s.Open())
        {
            await CliStore.AddAsync(store, "shop", "cart", "app"); // ten days old (manual clock)
            _s.Time.Advance(TimeSpan.FromDays(9.9));
            await CliStore.AddAsync(store, "shop", "cart", "app");
        }
        var (code, output, err) = await CliStore.RunAsync(["gc", "--max-age", "7d", "--dry-run", .. _s.StoreFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.True(output.Contains("older than 7d"), output);
        Assert.Single(output.Split('\n'), l => l.StartsWith("would delete", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Gc_max_age_without_a_unit_is_a_usage_error_and_deletes_nothing()
    {
        // `--max-age 7` used to mean 7 seconds: with help showing 12h and 7d, a typo deleted almost everything
        CheckpointInfo a, b;
        using (var store = _s.Open())
        {
            a = await CliStore.AddAsync(store, "shop", "cart", "app");
            _s.Time.Advance(TimeSpan.FromHours(1));
            b = await CliStore.AddAsync(store, "shop", "cart", "app");
        }
        var before = Directory.GetFiles(_s.CheckpointDir, "*", SearchOption.AllDirectories).Order().ToArray();

        var (code, output, err) = await CliStore.RunAsync(["gc", "--max-age", "7", .. _s.StoreFlags]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--max-age '7' has no unit: write 7m, 7h or 7d", err);
        Assert.Contains("Run 'crsc gc --help' for usage.", err);
        Assert.Equal("", output);
        Assert.Equal(before, Directory.GetFiles(_s.CheckpointDir, "*", SearchOption.AllDirectories).Order().ToArray());
        Assert.True(File.Exists(a.ArchivePath) && File.Exists(b.ArchivePath));

        // with a unit it is a duration as before
        (code, output, err) = await CliStore.RunAsync(["gc", "--max-age", "7s", "--dry-run", .. _s.StoreFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains("older than 7s", output);
    }

    [Theory]
    [InlineData("7")]
    [InlineData("0")]
    [InlineData("86400")]
    public void Duration_flags_refuse_a_bare_number(string text)
    {
        Assert.False(CliOutput.TryParseDuration(text, out _));
        Assert.Contains($"--timeout '{text}' has no unit", CliOutput.DurationProblem("--timeout", text, "a duration"));
    }

    [Theory]
    [InlineData("500MiB", 500L << 20)]
    [InlineData("20G", 20L << 30)]
    [InlineData("1.5KiB", 1536)]
    [InlineData("1GB", 1_000_000_000)]
    [InlineData("1048576", 1048576)]
    public void Sizes_parse(string text, long expected)
    {
        Assert.True(CliOutput.TryParseSize(text, out var v));
        Assert.Equal(expected, v);
    }

    [Fact]
    public void Human_units()
    {
        Assert.Equal("512 B", CliOutput.Bytes(512));
        Assert.Equal("1.5 KiB", CliOutput.Bytes(1536));
        Assert.Equal("12 MiB", CliOutput.Bytes(12L << 20));
        Assert.True(CliOutput.TryParseDuration("7d", out var d) && d == TimeSpan.FromDays(7));
        Assert.True(CliOutput.TryParseDuration("1h30m", out d) && d == TimeSpan.FromMinutes(90));
        Assert.False(CliOutput.TryParseDuration("-5m", out _));
    }

    // .NET's '$' also matches before a final '\n': crsc list $'default\n' must be a usage error, not a query
    [Theory]
    [InlineData("default\n")]
    [InlineData("default\r\n")]
    [InlineData("default/web\n")]
    [InlineData("default/web\r\n")]
    public async Task List_refuses_a_filter_with_a_trailing_newline(string filter)
    {
        var (code, _, err) = await CliStore.RunAsync("list", filter, "--checkpoint-dir", "/nonexistent");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("not a valid DNS-1123", err);
    }
}
