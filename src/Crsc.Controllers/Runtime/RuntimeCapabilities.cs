using System.Security.Cryptography;
using System.Text;
using Crsc.Api.Crds;

namespace Crsc.Controllers.Runtime;

/// <summary>One verdict (its state is the API's <see cref="CapabilityState"/>, as <c>CheckpointNode</c> shows it): the state, why (in words a person can act on), and the exact change that fixes it, if any.</summary>
public sealed record Capability(CapabilityState State, string Reason, string? Fix = null)
{
    public static Capability Supported(string reason) => new(CapabilityState.Supported, reason);
    public static Capability Disabled(string reason, string fix) => new(CapabilityState.DisabledByConfig, reason, fix);
    public static Capability NotSupported(string reason, string? fix) => new(CapabilityState.NotSupported, reason, fix);
    public static Capability Unknown(string reason, string? fix = null) => new(CapabilityState.Unknown, reason, fix);
}

/// <summary>
/// What this node's container runtime can do for crsc: checkpoint a container (CRI <c>CheckpointContainer</c>), and
/// restore one from a checkpoint image inside CRI <c>CreateContainer</c> (crsc's in-place restore). Made by
/// <see cref="RuntimeCapabilityProbe.Classify"/> from the inputs it lists.
/// </summary>
/// <param name="RuntimeName">the CRI <c>Version</c> answer's runtime name (<c>containerd</c>, <c>cri-o</c>), empty when unknown</param>
/// <param name="RuntimeVersion">the runtime's version text as it reported it, empty when unknown</param>
/// <param name="Inputs">what was read and how it went, one line each (e.g. <c>CRI Status verbose: info["config"] read</c>)</param>
public sealed record RuntimeCapabilities(
    string RuntimeName,
    string RuntimeVersion,
    Capability Checkpoint,
    Capability Restore,
    IReadOnlyList<string> Inputs)
{
    /// <summary>
    /// Changes whenever something the verdicts were made from changes: the runtime's name and version, the
    /// configuration it reported, and whether CRIU is there. A runtime restart that changed its version or its
    /// configuration changes it; a restart that changed neither cannot change the verdicts either. The daemon
    /// compares fingerprints to decide whether to publish again.
    /// </summary>
    public string Fingerprint { get; init; } = "";

    /// <summary>Both operations work.</summary>
    public bool CanCheckpointAndRestore =>
        Checkpoint.State == CapabilityState.Supported && Restore.State == CapabilityState.Supported;

    /// <summary>A fingerprint of the raw inputs (name, version, configuration texts, CRIU fact): 16 hex digits.</summary>
    public static string FingerprintOf(params string?[] parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts) sb.Append(p?.Length ?? -1).Append(':').Append(p).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }
}

/// <summary>Whether CRIU is installed where the runtime finds it: <c>criu --version</c> resolved from the search path.</summary>
/// <param name="Present">true: found and answered; false: not found; null: could not be checked</param>
/// <param name="Detail">the version or path found, or what went wrong</param>
public sealed record CriuFact(bool? Present, string Detail)
{
    public static CriuFact Found(string detail) => new(true, detail);
    public static CriuFact Missing(string detail) => new(false, detail);
    public static CriuFact NotChecked(string detail) => new(null, detail);
}

/// <summary>Everything <see cref="RuntimeCapabilityProbe.Classify"/> decides from; null members were not read (the errors say why).</summary>
/// <param name="Version">CRI <c>Version</c>, or null when the call failed (<paramref name="VersionError"/>)</param>
/// <param name="Status">CRI <c>Status</c> with verbose, or null when the call failed (<paramref name="StatusError"/>)</param>
/// <param name="CrioConfig">CRI-O's configuration as TOML from <c>GET /config</c> on its socket, or null (<paramref name="CrioConfigError"/>)</param>
/// <param name="Criu">whether CRIU is installed, or null when not checked</param>
public sealed record RuntimeProbeInputs(
    RuntimeVersion? Version,
    string? VersionError = null,
    RuntimeStatusInfo? Status = null,
    string? StatusError = null,
    string? CrioConfig = null,
    string? CrioConfigError = null,
    CriuFact? Criu = null);

/// <summary>Reads CRI-O's effective configuration (TOML) from its own HTTP endpoint (<c>GET /config</c> on the CRI socket).</summary>
public interface ICrioConfigReader
{
    /// <exception cref="Exception">any failure: the probe treats the configuration as unread</exception>
    Task<string> ReadConfigAsync(CancellationToken ct);
}
