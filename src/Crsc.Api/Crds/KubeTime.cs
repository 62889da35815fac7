using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crsc.Api.Crds;

/// <summary>
/// <c>metav1.Time</c>: RFC 3339 in UTC with whole seconds (<c>2025-05-20T10:00:00Z</c>). The API server
/// stores no more than that, so crsc writes no more either.
/// </summary>
public static class KubeTime
{
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    public static DateTimeOffset Truncate(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
    }

    public static string ToText(DateTimeOffset value) =>
        Truncate(value).ToString(Format, CultureInfo.InvariantCulture);
}

/// <summary>Reads any RFC 3339 time, writes <see cref="KubeTime.Format"/>.</summary>
public sealed class KubeTimeJsonConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        if (text is null
            || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value))
            throw new JsonException($"'{text}' is not an RFC 3339 time");
        return value.ToUniversalTime();
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(KubeTime.ToText(value));
}
