using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Crsc.Controllers.Runtime;
using Crsc.Cri;

namespace Crsc.Preflight;

/// <summary>
/// The real node: files through the BCL, owners and kinds through <c>statx(2)</c> (no symlink following),
/// executables on <paramref name="searchPath"/> (this process's PATH when null).
/// </summary>
internal sealed partial class SystemPreflightHost(string? searchPath = null) : IPreflightHost
{
    private const string DefaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public string? FindExecutable(string name)
    {
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal)) return null;
        var path = searchPath ?? Environment.GetEnvironmentVariable("PATH");
        if (string.IsNullOrEmpty(path)) path = DefaultSearchPath;
        foreach (var dir in path.Split(':'))
        {
            // an empty or relative entry means the current directory: never run a binary from there
            if (!System.IO.Path.IsPathRooted(dir)) continue;
            var candidate = System.IO.Path.Combine(dir, name);
            try
            {
                if (!File.Exists(candidate)) continue;
                const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
                if ((File.GetUnixFileMode(candidate) & anyExecute) != 0) return candidate;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return null;
    }

    public IReadOnlyList<string> ListFiles(string directory)
    {
        try
        {
            var files = Directory.GetFiles(directory);
            Array.Sort(files, StringComparer.Ordinal);
            return files;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    public string? ReadText(string path)
    {
        try
        {
            if (!path.EndsWith(".gz", StringComparison.Ordinal)) return File.ReadAllText(path);
            // /proc/config.gz: the running kernel's configuration, gzipped
            using var file = File.OpenRead(path);
            using var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
            using var reader = new StreamReader(gzip);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { return null; }
    }

    public PathInfo? Stat(string path)
    {
        // struct statx: stx_uid at 20 (u32), stx_mode at 28 (u16); the layout is the same on every architecture
        Span<byte> buffer = stackalloc byte[NativeMethods.StatxSize];
        const uint StatxBasicStats = 0x7ff;
        if (!NativeMethods.Stat(NativeMethods.AtFdCwd, path, NativeMethods.AtSymlinkNoFollow, StatxBasicStats, buffer)) return null;
        var uid = BitConverter.ToUInt32(buffer[20..24]);
        var mode = NativeMethods.ModeOf(buffer);
        var kind = (mode & 0xF000) switch
        {
            0x4000 => PathKind.Directory,
            0x8000 => PathKind.File,
            0xC000 => PathKind.Socket,
            0xA000 => PathKind.Symlink,
            _ => PathKind.Other,
        };
        return new PathInfo(kind, uid, (UnixFileMode)(mode & 0xFFF));
    }

    public string KernelRelease =>
        ReadText("/proc/sys/kernel/osrelease")?.Trim() is { Length: > 0 } r ? r : Environment.OSVersion.Version.ToString();

    public uint EffectiveUid => GetEuid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>Runs programs with an argument vector (no shell); a program that is not installed is "not started".</summary>
internal sealed class SystemProgramRunner : IProgramRunner
{
    public async Task<ProgramOutput> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var process = new Process { StartInfo = psi };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is { } l) lock (output) output.Append(l).Append('\n'); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (output) output.Append(l).Append('\n'); };
        try
        {
            process.Start();
        }
        catch (Win32Exception)
        {
            return new ProgramOutput(null, $"{program}: not found");
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            ct.ThrowIfCancellationRequested();
            lock (output) return new ProgramOutput(-1, $"{program} did not finish within {timeout.TotalSeconds:0} s\n{output}");
        }
        process.WaitForExit(); // drains the output readers
        lock (output) return new ProgramOutput(process.ExitCode, output.ToString());
    }
}

/// <summary>CRI <c>Version</c> through crsc's own CRI client, bounded by a timeout.</summary>
internal sealed class CriRuntimeVersionProbe : IRuntimeVersionProbe
{
    public async Task<RuntimeVersion> VersionAsync(string endpoint, TimeSpan timeout, CancellationToken ct)
    {
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = endpoint, DefaultTimeout = timeout });
        return await runtime.VersionAsync(ct).ConfigureAwait(false);
    }
}

/// <summary>
/// The capability probe over CRI at the endpoint, CRI-O's <c>GET /config</c> on the same socket (or
/// <paramref name="crioConfigEndpoint"/>), and <c>criu --version</c> from the search path for whether CRIU is there.
/// </summary>
internal sealed class CriRuntimeCapabilitySource(IProgramRunner programs, string? crioConfigEndpoint = null) : IRuntimeCapabilitySource
{
    public async Task<RuntimeCapabilities> ProbeAsync(string endpoint, TimeSpan timeout, CancellationToken ct)
    {
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = endpoint, DefaultTimeout = timeout });
        var probe = new RuntimeCapabilityProbe(runtime, CriuAsync, new CrioConfigReader(crioConfigEndpoint ?? endpoint, timeout));
        return await probe.ProbeAsync(ct).ConfigureAwait(false);
    }

    private async Task<CriuFact> CriuAsync(CancellationToken ct) =>
        (await NodePreflight.CriuFactAsync(programs, CriuFact.Missing("criu is not on the search path"), ct).ConfigureAwait(false)).Fact;
}
