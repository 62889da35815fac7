using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

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
