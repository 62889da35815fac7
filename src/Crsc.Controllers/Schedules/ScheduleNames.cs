using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Crsc.Controllers.Schedules;

/// <summary>Names and label values of the objects schedules create, always valid for the API server.</summary>
public static class ScheduleNames
{
    public const int MaxNameLength = 253;
    public const int MaxLabelValueLength = 63;
    public const string TimeFormat = "yyyyMMddHHmmss";

    /// <summary>
    /// <c>&lt;workload&gt;-&lt;container&gt;-&lt;yyyyMMddHHmmss&gt;</c> (UTC), with <c>-&lt;suffix&gt;</c> after the time when given
    /// (a second pod of the same workload and time). When that is longer than 253 characters the
    /// <c>&lt;workload&gt;-&lt;container&gt;</c> prefix is cut and an 8-digit hash of the whole prefix added, so that two long
    /// names that share their beginning still differ.
    /// </summary>
    public static string CheckpointName(string workload, string container, DateTimeOffset time, string? suffix = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(workload);
        ArgumentException.ThrowIfNullOrEmpty(container);
        var prefix = $"{workload}-{container}";
        var tail = "-" + time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture)
            + (string.IsNullOrEmpty(suffix) ? "" : "-" + suffix);
        if (prefix.Length + tail.Length <= MaxNameLength) return prefix + tail;
        var hash = "-" + ShortHash(prefix);
        var keep = MaxNameLength - tail.Length - hash.Length;
        return TrimEnd(prefix[..keep]) + hash + tail;
    }

    /// <summary>
    /// <paramref name="name"/> as a label value: itself when it fits in 63 characters, else its first 54 characters
    /// and an 8-digit hash of the whole (label values cannot be longer; object names can).
    /// </summary>
    public static string LabelValue(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length <= MaxLabelValueLength) return name;
        var hash = ShortHash(name);
        return TrimEnd(name[..(MaxLabelValueLength - hash.Length - 1)]) + "-" + hash;
    }

    /// <summary>Eight lower-case hex digits of the SHA-256 of <paramref name="text"/>.</summary>
    public static string ShortHash(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..8];

    // a cut name must still end in a letter or digit
    private static string TrimEnd(string text) => text.TrimEnd('-', '.');
}
