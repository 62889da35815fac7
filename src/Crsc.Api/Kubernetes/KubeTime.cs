using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary>
/// <c>metav1.Time</c>: RFC 3339 in UTC with whole seconds (<c>2026-01-02T03:04:05Z</c>). The default for every
/// <see cref="DateTimeOffset"/> in <see cref="KubeJsonContext"/>. Reading accepts any RFC 3339 form.
/// </summary>
public sealed class KubeTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => KubeTime.Parse(reader.GetString());

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
        => writer.WriteStringValue(KubeTime.FormatTime(value));
}

/// <summary>
/// <c>metav1.MicroTime</c>: RFC 3339 in UTC with exactly six fractional digits
/// (<c>2026-01-02T03:04:05.123456Z</c>). Put <c>[JsonConverter(typeof(MicroTimeConverter))]</c> on the property.
/// </summary>
public sealed class MicroTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => KubeTime.Parse(reader.GetString());

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
        => writer.WriteStringValue(KubeTime.FormatMicroTime(value));
}

/// <summary>
/// Kubernetes timestamps: <c>metav1.Time</c> is RFC 3339 in UTC with whole seconds (<c>2025-05-20T10:00:00Z</c>; the
/// API server stores no more than that, so crsc writes no more either), <c>metav1.MicroTime</c> has microseconds.
/// </summary>
public static class KubeTime
{
    /// <summary>The <c>metav1.Time</c> format.</summary>
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    /// <summary><paramref name="value"/> in UTC without its fraction of a second (what a metav1.Time keeps).</summary>
    public static DateTimeOffset Truncate(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
    }

    /// <summary>A <c>metav1.Time</c>: <see cref="Format"/> of the truncated value.</summary>
    public static string ToText(DateTimeOffset value) => FormatTime(value);

    public static string FormatTime(DateTimeOffset value)
        => value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);

    public static string FormatMicroTime(DateTimeOffset value)
        => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset Parse(string? text)
    {
        if (string.IsNullOrEmpty(text)) throw new JsonException("empty timestamp");
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
            throw new JsonException($"not an RFC 3339 timestamp: '{text}'");
        return value;
    }
}
