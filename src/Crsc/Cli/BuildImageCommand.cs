using System.Globalization;
using Crsc.Interceptor;
using Crsc.Storage.Oci;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc build-image --rootfs DIR --output FILE</c>, hidden: what <c>make image</c> runs (packaging/build-image.sh). It
/// makes crsc's container image from a root filesystem (the files of a few Debian packages, staged by the script),
/// this very binary at <c>/usr/bin/crsc</c> and the small <c>crsc-interceptor</c> beside it (the injected sidecar's
/// command) at <c>/usr/bin/crsc-interceptor</c>, as an OCI image layout tarball that <c>ctr images import</c> and
/// <c>podman load</c> read: two layers (the Debian base, which changes only with the packages, and the binaries), written
/// by Crsc.Storage's OCI code (<see cref="ContainerImageBuilder"/>), the same bytes for the same inputs.
/// </summary>
internal static class BuildImageCommand
{
    /// <summary>
    /// The name the image is imported under: a reference with a domain, so containerd (which would read a bare
    /// <c>crsc:V</c> as <c>docker.io/library/crsc:V</c>) and podman/CRI-O (which name local images <c>localhost/…</c>)
    /// both store it as exactly what the static pod's <c>image:</c> says.
    /// </summary>
    public const string DefaultName = "localhost/crsc";
    public const string BinaryPath = "usr/bin/crsc";
    /// <summary>Where the sidecar's binary goes (InterceptorSidecarOptions.Binary runs it).</summary>
    public const string InterceptorBinaryPath = "usr/bin/" + InterceptorCommand.ExecutableName;
    private const UnixFileMode Executable = (UnixFileMode)0b111_101_101; // 0755

    public static CommandSpec Spec() => new("build-image", "Build crsc's container image (OCI image layout tarball); used by `make image`.")
    {
        Hidden = true,
        Description = "Packs DIR (a root filesystem; `make image` stages it from Debian packages) as one layer and the crsc\n" +
                      "binary (this one, or --binary) as /usr/bin/crsc with crsc-interceptor (the sidecar's binary) as\n" +
                      "/usr/bin/crsc-interceptor in a second, and writes the image as an OCI image\n" +
                      "layout tarball for `ctr -n k8s.io images import FILE` or `podman load -i FILE`. Reproducible: every\n" +
                      "file time and the config's `created` are --created (default $SOURCE_DATE_EPOCH, else 0), owners 0:0,\n" +
                      "entries sorted; the same inputs give the same digest.",
        Options =
        [
            new OptionSpec("--rootfs", "DIR", "the root filesystem of the base layer"),
            new OptionSpec("--output", "FILE", "where to write the tarball (replaced whole)"),
            new OptionSpec("--name", "NAME", $"image name (default {DefaultName})"),
            new OptionSpec("--tag", "TAG", $"image tag (default this binary's version, {BuildInfo.Version})"),
            new OptionSpec("--binary", "FILE", "the crsc binary to pack (default: this executable, when it is the AOT build)"),
            new OptionSpec("--interceptor-binary", "FILE", "the crsc-interceptor binary to pack (default: crsc-interceptor beside the crsc binary)"),
            new OptionSpec("--created", "EPOCH", "seconds since 1970 for every time in the image (default $SOURCE_DATE_EPOCH, else 0)"),
            new OptionSpec("--base-comment", "TEXT", "history comment of the base layer (e.g. the packages in it)"),
        ],
        Handler = RunAsync,
        Examples = ["crsc build-image --rootfs obj/image/rootfs --output obj/image/crsc-0.1.0.oci.tar"],
    };

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        if (p.Value("--rootfs") is not { } rootfs) return CliOutput.Usage(p, "--rootfs DIR is required");
        if (p.Value("--output") is not { } output) return CliOutput.Usage(p, "--output FILE is required");
        if (!Directory.Exists(rootfs)) return CliOutput.Usage(p, $"--rootfs '{rootfs}' is not a directory");
        var name = p.Value("--name") ?? DefaultName;
        var tag = p.Value("--tag") ?? BuildInfo.Version;
        if (!ImageReference.TryParse($"{name}:{tag}", out var reference, out var problem) || reference.Digest is not null)
            return CliOutput.Usage(p, $"--name/--tag: '{name}:{tag}' {problem ?? "must not have a digest"}");

        // this executable only when it is the AOT binary: under the JIT (dotnet run, a test host) crsc.dll is beside it
        var processPath = File.Exists(Path.Join(AppContext.BaseDirectory, "crsc.dll")) ? null : Environment.ProcessPath;
        var binary = p.Value("--binary") ?? processPath;
        if (binary is null) return CliOutput.Usage(p, "this crsc is not the AOT binary; give the one to pack with --binary FILE");
        if (!File.Exists(binary)) return CliOutput.Usage(p, $"--binary '{binary}' does not exist");
        var interceptor = p.Value("--interceptor-binary") ?? Path.Join(Path.GetDirectoryName(Path.GetFullPath(binary)), InterceptorCommand.ExecutableName);
        if (!File.Exists(interceptor))
            return CliOutput.Usage(p, p.Value("--interceptor-binary") is null
                ? $"there is no {InterceptorCommand.ExecutableName} beside {binary} (make publish builds both); give it with --interceptor-binary FILE"
                : $"--interceptor-binary '{interceptor}' does not exist");
        // the version and commit are known only of this binary
        var self = processPath is not null && Path.GetFullPath(binary) == Path.GetFullPath(processPath);

        var epochText = p.Value("--created") ?? Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
        long epoch = 0;
        if (!string.IsNullOrEmpty(epochText) && (!long.TryParse(epochText, NumberStyles.None, CultureInfo.InvariantCulture, out epoch) || epoch > 253402300799))
            return CliOutput.Usage(p, $"--created/SOURCE_DATE_EPOCH '{epochText}' is not a number of seconds since 1970");
        var created = DateTimeOffset.FromUnixTimeSeconds(epoch);

        var labels = new Dictionary<string, string>
        {
            ["org.opencontainers.image.title"] = "crsc",
            ["org.opencontainers.image.description"] = "crsc: checkpoint/restore for stateful containers on Kubernetes (node daemon and CLI)",
            ["org.opencontainers.image.version"] = tag,
            ["org.opencontainers.image.created"] = OciJson.Rfc3339(created),
        };
        if (self) labels["org.opencontainers.image.revision"] = BuildInfo.Commit;

        IReadOnlyList<LayerEntry> baseEntries;
        try { baseEntries = OciLayerWriter.FromDirectory(rootfs); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return CliOutput.Fail(p, $"cannot read the root filesystem {rootfs}: {e.Message}");
        }
        if (baseEntries.FirstOrDefault(e => e.Path is BinaryPath or InterceptorBinaryPath) is { } taken)
            return CliOutput.Usage(p, $"--rootfs '{rootfs}' already has /{taken.Path}: the binaries go in their own layer");

        var spec = new ContainerImageSpec
        {
            Name = name,
            Tag = tag,
            Created = created,
            Layers =
            [
                new ContainerImageLayer(baseEntries, "crsc build-image --rootfs",
                    p.Value("--base-comment") ?? "the root filesystem the crsc binary needs"),
                new ContainerImageLayer(BinariesLayer(binary, interceptor), "crsc build-image --binary",
                    self ? $"crsc {BuildInfo.Version} ({BuildInfo.Commit}, {BuildInfo.Flavour})" : $"crsc {tag}"),
            ],
            Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            Entrypoint = ["/" + BinaryPath],
            Cmd = ["daemon"],
            WorkingDir = "/",
            Labels = labels,
        };

        ContainerImage image;
        try { image = await ContainerImageBuilder.WriteLayoutTarAsync(spec, output, ct); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return CliOutput.Fail(p, $"cannot write the image {output}: {e.Message}");
        }
        p.Out.WriteLine($"image   {image.Reference}");
        p.Out.WriteLine($"digest  {image.Manifest.Digest}");
        p.Out.WriteLine($"id      {image.Config.Digest}");
        p.Out.WriteLine($"layers  {string.Join(", ", image.Layers.Select(l => $"{CliOutput.Bytes(l.Descriptor.Size)} ({CliOutput.Bytes(l.UncompressedSize)} as tar)"))}");
        p.Out.WriteLine($"file    {image.Path} ({CliOutput.Bytes(image.Size)})");
        return ExitCodes.Ok;
    }

    /// <summary>The second layer: <paramref name="crsc"/> at <see cref="BinaryPath"/>, <paramref name="interceptor"/> at <see cref="InterceptorBinaryPath"/>.</summary>
    internal static IReadOnlyList<LayerEntry> BinariesLayer(string crsc, string interceptor) =>
    [
        .. OciLayerWriter.FromFile(crsc, BinaryPath, Executable),
        .. OciLayerWriter.FromFile(interceptor, InterceptorBinaryPath, Executable).Where(e => e.Type == LayerEntryType.File),
    ];
}
