using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// Rules for every name that becomes a path component: Kubernetes names (DNS-1123) and checkpoint ids.
/// A name that passes contains no '/', no NUL, no '..' and does not start with a dot.
/// </summary>
internal static partial class StoreNames
{
    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Label();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Subdomain();

    /// <summary>Checkpoint ids: <c>yyyyMMddTHHmmssZ-xxxxxxxx</c> (UTC time of ingestion, 32 random bits in hex).</summary>
    [GeneratedRegex("^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-fA-F-]{1,64}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex UidPattern();

    public static string Namespace(string? value) => Label("namespace", value);
    public static string Container(string? value) => Label("container name", value);
    public static string Workload(string? value) => Subdomain("workload name", value);
    public static string Pod(string? value) => Subdomain("pod name", value);

    public static string ObjectName(string? value) => Subdomain("ContainerCheckpoint name", value);

    public static string? PodUid(string? value) => Uid("pod UID", value);

    public static string? ObjectUid(string? value) => Uid("ContainerCheckpoint UID", value);

    public static bool IsUid(string? value) => value is not null && UidPattern().IsMatch(value);

    private static string? Uid(string kind, string? value)
    {
        if (value is null) return null;
        if (!IsUid(value)) throw new InvalidCheckpointNameException(kind, value, "expected a UID (hex digits and dashes)");
        return value;
    }

    public static bool IsId(string? value) => value is not null && IdPattern().IsMatch(value);

    public static string Id(string? value)
    {
        if (!IsId(value))
            throw new InvalidCheckpointNameException("checkpoint id", value ?? "", "expected yyyyMMddTHHmmssZ-xxxxxxxx");
        return value!;
    }

    public static string NewId(DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture)
            + "-" + Convert.ToHexStringLower(random);
    }

    public static bool IsLabel(string? value) => value is { Length: > 0 and <= 63 } && Dns1123Label().IsMatch(value);
    public static bool IsSubdomain(string? value) => value is { Length: > 0 and <= 253 } && Dns1123Subdomain().IsMatch(value);

    private static string Label(string kind, string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new InvalidCheckpointNameException(kind, value ?? "", "must not be empty");
        if (value.Length > 63) throw new InvalidCheckpointNameException(kind, value, "longer than 63 characters");
        if (!Dns1123Label().IsMatch(value))
            throw new InvalidCheckpointNameException(kind, value, "not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)");
        return value;
    }

    private static string Subdomain(string kind, string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new InvalidCheckpointNameException(kind, value ?? "", "must not be empty");
        if (value.Length > 253) throw new InvalidCheckpointNameException(kind, value, "longer than 253 characters");
        if (!Dns1123Subdomain().IsMatch(value))
            throw new InvalidCheckpointNameException(kind, value, "not a DNS-1123 subdomain (lower-case labels of letters, digits and '-', separated by '.')");
        return value;
    }
}
