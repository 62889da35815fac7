using System.Formats.Tar;
using System.Text.Json;
using Crsc.Cli;
using Crsc.Testing;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc build-image</c>, the hidden verb <c>make image</c> runs: a root filesystem and a binary in, an OCI image
/// layout tarball out, the same digest for the same inputs.
/// </summary>
public sealed class BuildImageCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    private string Rootfs()
    {
        var root = _dir.Combine("rootfs");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc", "passwd"), "root:x:0:0:root:/root:/usr/sbin/nologin\n");
        Directory.CreateDirectory(Path.Combine(root, "usr", "bin"));
        File.WriteAllText(_dir.Combine("crsc"), "#!/bin/sh\necho fake\n");
        File.WriteAllText(_dir.Combine("crsc-interceptor"), "#!/bin/sh\necho fake sidecar\n");
        return root;
    }

    private static string Line(string output, string key) =>
        output.Split('\n').Single(l => l.StartsWith(key + " ", StringComparison.Ordinal))[key.Length..].Trim();

    [Fact]
    public async Task Two_runs_on_the_same_inputs_print_and_write_the_same_image()
    {
        var rootfs = Rootfs();
        string[] Args(string output) => ["build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--tag", "1.2.3",
            "--created", "1780000000", "--output", output];
        var first = await Run(Args(_dir.Combine("a", "crsc.oci.tar")));
        Assert.True(first.Code == ExitCodes.Ok, first.Err);
        await Task.Delay(1100);
        var second = await Run(Args(_dir.Combine("b", "crsc.oci.tar")));
        Assert.True(second.Code == ExitCodes.Ok, second.Err);

        Assert.Equal("localhost/crsc:1.2.3", Line(first.Out, "image"));
        Assert.Matches("^sha256:[0-9a-f]{64}$", Line(first.Out, "digest"));
        Assert.Equal(Line(first.Out, "digest"), Line(second.Out, "digest"));
        Assert.Equal(File.ReadAllBytes(_dir.Combine("a", "crsc.oci.tar")), File.ReadAllBytes(_dir.Combine("b", "crsc.oci.tar")));
    }

    [Fact]
    public async Task The_image_runs_the_daemon_from_usr_bin_crsc_and_says_what_it_is()
    {
        var rootfs = Rootfs();
        var output = _dir.Combine("crsc.oci.tar");
        var (code, stdout, err) = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", output,
            "--created", "0", "--base-comment", "Debian packages: libc6 2.36");
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Equal("localhost/crsc:" + BuildInfo.Version, Line(stdout, "image"));

        using var reader = new TarReader(File.OpenRead(output));
        var files = new Dictionary<string, byte[]>();
        while (reader.GetNextEntry() is { } e)
        {
            var m = new MemoryStream();
            e.DataStream?.CopyTo(m);
            files[e.Name] = m.ToArray();
        }
        var manifestDigest = Line(stdout, "digest");
        using var manifest = JsonDocument.Parse(files["blobs/sha256/" + manifestDigest[7..]]);
        var configDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
        Assert.Equal(configDigest, Line(stdout, "id"));
        using var config = JsonDocument.Parse(files["blobs/sha256/" + configDigest[7..]]);
        var c = config.RootElement;
        Assert.Equal("1970-01-01T00:00:00Z", c.GetProperty("created").GetString());
        Assert.Equal(["/usr/bin/crsc"], c.GetProperty("config").GetProperty("Entrypoint").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(["daemon"], c.GetProperty("config").GetProperty("Cmd").EnumerateArray().Select(x => x.GetString()));
        var labels = c.GetProperty("config").GetProperty("Labels");
        Assert.Equal(BuildInfo.Version, labels.GetProperty("org.opencontainers.image.version").GetString());
        // the commit is that of the crsc that runs, not of a binary given with --binary
        Assert.False(labels.TryGetProperty("org.opencontainers.image.revision", out _));
        Assert.Equal("Debian packages: libc6 2.36", c.GetProperty("history")[0].GetProperty("comment").GetString());
    }

    [Fact]
    public async Task Created_comes_from_SOURCE_DATE_EPOCH_when_not_given()
    {
        var rootfs = Rootfs();
        var before = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
        try
        {
            Environment.SetEnvironmentVariable("SOURCE_DATE_EPOCH", "1780000000");
            var a = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("a.tar"));
            var b = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("b.tar"),
                "--created", "1780000000");
            Assert.Equal(Line(b.Out, "digest"), Line(a.Out, "digest"));
            Environment.SetEnvironmentVariable("SOURCE_DATE_EPOCH", "yesterday");
            var bad = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("c.tar"));
            Assert.Equal(ExitCodes.Usage, bad.Code);
            Assert.Contains("'yesterday' is not a number of seconds since 1970", bad.Err);
        }
        finally { Environment.SetEnvironmentVariable("SOURCE_DATE_EPOCH", before); }
    }

    [Theory]
    [InlineData(new[] { "--output", "x.tar" }, "--rootfs DIR is required")]
    [InlineData(new[] { "--rootfs", "ROOTFS" }, "--output FILE is required")]
    [InlineData(new[] { "--rootfs", "/nonexistent/rootfs", "--output", "x.tar" }, "is not a directory")]
    [InlineData(new[] { "--rootfs", "ROOTFS", "--output", "x.tar", "--binary", "/nonexistent/crsc" }, "'/nonexistent/crsc' does not exist")]
    [InlineData(new[] { "--rootfs", "ROOTFS", "--output", "x.tar", "--binary", "BINARY", "--name", "Localhost/CRSC" }, "'Localhost/CRSC:")]
    [InlineData(new[] { "--rootfs", "ROOTFS", "--output", "x.tar", "--binary", "BINARY", "--created", "-5" }, "'-5' is not a number")]
    public async Task Bad_arguments_are_usage_errors_that_name_them(string[] args, string message)
    {
        var rootfs = Rootfs();
        var (code, _, err) = await Run(["build-image", .. args.Select(a => a == "ROOTFS" ? rootfs : a == "BINARY" ? _dir.Combine("crsc") : a)]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(message, err);
    }

    [Theory]
    [InlineData("crsc")]
    [InlineData("crsc-interceptor")]
    public async Task A_rootfs_that_has_its_own_crsc_is_refused(string binary)
    {
        var rootfs = Rootfs();
        File.WriteAllText(Path.Combine(rootfs, "usr", "bin", binary), "another");
        var (code, _, err) = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("x.tar"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains($"already has /usr/bin/{binary}:", err);
    }

    [Fact]
    public void The_sidecars_binary_is_packed_beside_crsc_in_its_layer()
    {
        Rootfs();
        var entries = BuildImageCommand.BinariesLayer(_dir.Combine("crsc"), _dir.Combine("crsc-interceptor"));
        Assert.Equal(["usr", "usr/bin", "usr/bin/crsc", "usr/bin/crsc-interceptor"], entries.Select(e => e.Path));
        var sidecar = entries[^1];
        Assert.Equal((Storage.Oci.LayerEntryType.File, (UnixFileMode)0b111_101_101, _dir.Combine("crsc-interceptor")), (sidecar.Type, sidecar.Mode, sidecar.Source));
    }

    [Fact]
    public async Task Without_crsc_interceptor_beside_the_binary_it_must_be_given()
    {
        var rootfs = Rootfs();
        File.Delete(_dir.Combine("crsc-interceptor"));
        var (code, _, err) = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("x.tar"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains($"there is no crsc-interceptor beside {_dir.Combine("crsc")}", err);
        Assert.Contains("--interceptor-binary FILE", err);
        Assert.False(File.Exists(_dir.Combine("x.tar")));

        (code, _, err) = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("x.tar"),
            "--interceptor-binary", "/nonexistent/crsc-interceptor");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--interceptor-binary '/nonexistent/crsc-interceptor' does not exist", err);

        File.WriteAllText(_dir.Combine("elsewhere"), "#!/bin/sh\n");
        (code, _, err) = await Run("build-image", "--rootfs", rootfs, "--binary", _dir.Combine("crsc"), "--output", _dir.Combine("x.tar"),
            "--interceptor-binary", _dir.Combine("elsewhere"));
        Assert.True(code == ExitCodes.Ok, err);
    }

    [Fact]
    public async Task Under_the_JIT_host_the_binary_must_be_given()
    {
        // the test host runs crsc.dll: packing it would make an image that cannot run
        var (code, _, err) = await Run("build-image", "--rootfs", Rootfs(), "--output", _dir.Combine("x.tar"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--binary FILE", err);
    }

    [Fact]
    public async Task It_is_hidden_from_help_and_from_the_list_of_commands_but_has_its_own_help()
    {
        var (_, rootHelp, _) = await Run("--help");
        Assert.DoesNotContain("build-image", rootHelp);
        Assert.Contains("manifests", rootHelp);
        var (_, _, unknown) = await Run("frobnicate");
        Assert.DoesNotContain("build-image", unknown);
        var (code, help, _) = await Run("build-image", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("--rootfs DIR", help);
        Assert.Contains("SOURCE_DATE_EPOCH", help);
    }
}
