using Crsc.Controllers.Runtime;

namespace Crsc.Preflight;

/// <summary>The verdict of one preflight row. <see cref="Fail"/> means crsc cannot work here until it is fixed.</summary>
internal enum PreflightStatus
{
    Ok,
    Warn,
    Fail,
}

/// <summary>One row of <c>crsc preflight</c>: what was checked, what was found, and how to fix it when it is not OK.</summary>
internal sealed record PreflightRow(string Check, PreflightStatus Status, string Detail, string? Fix = null)
{
    public static PreflightRow Ok(string check, string detail) => new(check, PreflightStatus.Ok, detail);
    public static PreflightRow Warn(string check, string detail, string fix) => new(check, PreflightStatus.Warn, detail, fix);
    public static PreflightRow Fail(string check, string detail, string fix) => new(check, PreflightStatus.Fail, detail, fix);
}

/// <summary>What a file-system path is, as <c>lstat</c> says (symlinks are not followed).</summary>
internal sealed record PathInfo(PathKind Kind, uint OwnerUid, UnixFileMode Mode);

internal enum PathKind
{
    File,
    Directory,
    Socket,
    Symlink,
    Other,
}

/// <summary>The node's files as the preflight reads them. The real one reads the host; tests give a table.</summary>
internal interface IPreflightHost
{
    /// <summary>The text of a file, or null when it does not exist or cannot be read.</summary>
    string? ReadText(string path);

    /// <summary>The path's kind, owner and mode, or null when it does not exist.</summary>
    PathInfo? Stat(string path);

    /// <summary>The running kernel's release (<c>uname -r</c>).</summary>
    string KernelRelease { get; }

    /// <summary>The effective user id of this process.</summary>
    uint EffectiveUid { get; }

    /// <summary>The absolute path of the executable file <paramref name="name"/> on the search path, or null.</summary>
    string? FindExecutable(string name);

    /// <summary>The full paths of the files directly in a directory, sorted; empty when it does not exist.</summary>
    IReadOnlyList<string> ListFiles(string directory);
}

/// <summary>The outcome of running a program: null exit code when it could not be started (not installed).</summary>
internal sealed record ProgramOutput(int? ExitCode, string Output)
{
    public bool Started => ExitCode is not null;
}

/// <summary>Runs a program (<c>criu --version</c>, <c>criu check</c>, <c>/usr/bin/runc --version</c>) and returns its combined output.</summary>
internal interface IProgramRunner
{
    Task<ProgramOutput> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken ct);
}

/// <summary>Asks the container runtime at a CRI endpoint for its name and version (CRI <c>Version</c>).</summary>
internal interface IRuntimeVersionProbe
{
    Task<RuntimeVersion> VersionAsync(string endpoint, TimeSpan timeout, CancellationToken ct);
}

/// <summary>What the runtime at a CRI endpoint can do: checkpoint, and restore from a checkpoint image (<see cref="RuntimeCapabilityProbe"/>).</summary>
internal interface IRuntimeCapabilitySource
{
    Task<RuntimeCapabilities> ProbeAsync(string endpoint, TimeSpan timeout, CancellationToken ct);
}
