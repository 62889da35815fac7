using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Crsc.Api.Crds;

/// <summary>One problem with a spec, naming the field (<c>spec.retention.keepLast</c>) as the API server would.</summary>
public sealed record FieldError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// The checks the CRD schemas make (patterns, limits, CEL rules), in C#, for objects that never pass
/// through an API server (annotations turned into schedules, the node agent's on-disk cache, the CLI).
/// The schema and these checks are kept equal by the tests.
/// </summary>
internal static partial class Check
{
    public const int MaxNameLength = 253;
    public const int MaxLabelLength = 63;
    public const int MaxMessageLength = 32768;

    // The patterns of the CRD YAML, verbatim.
    public const string DnsSubdomainPattern = @"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    public const string DnsLabelPattern = @"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    public const string DigestPattern = @"^sha256:[a-f0-9]{64}$";
    public const string CronPattern = @"^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4})$";

    [GeneratedRegex(DnsSubdomainPattern, RegexOptions.CultureInvariant)]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(DnsLabelPattern, RegexOptions.CultureInvariant)]
    private static partial Regex DnsLabel();

    [GeneratedRegex(DigestPattern, RegexOptions.CultureInvariant)]
    private static partial Regex Digest();

    [GeneratedRegex(CronPattern, RegexOptions.CultureInvariant)]
    private static partial Regex Cron();

    /// <summary>RE2 semantics for the anchored patterns above: .NET's <c>$</c> also matches before a final newline, RE2's does not.</summary>
    private static bool Matches(Regex regex, string value) => !value.EndsWith('\n') && regex.IsMatch(value);

    public static void Required(List<FieldError> errors, string field, string? value)
    {
        if (string.IsNullOrEmpty(value)) errors.Add(new FieldError(field, "is required"));
    }

    public static void Name(List<FieldError> errors, string field, string? value, bool required = true)
    {
        if (!Present(errors, field, value, required)) return;
        if (value.Length > MaxNameLength || !Matches(DnsSubdomain(), value))
            errors.Add(new FieldError(field, $"'{value}' is not a valid name (lower-case RFC 1123 subdomain, at most {MaxNameLength} characters)"));
    }

    public static void Label(List<FieldError> errors, string field, string? value, bool required = true)
    {
        if (!Present(errors, field, value, required)) return;
        if (value.Length > MaxLabelLength || !Matches(DnsLabel(), value))
            errors.Add(new FieldError(field, $"'{value}' is not a valid name (lower-case RFC 1123 label, at most {MaxLabelLength} characters)"));
    }

    /// <summary>
    /// Whether there is a value to check further. Absent (null) is fine for an optional field; empty never
    /// is, because the schema's patterns reject "" (omit an optional field instead).
    /// </summary>
    private static bool Present(List<FieldError> errors, string field, [NotNullWhen(true)] string? value, bool required)
    {
        if (value is null)
        {
            if (required) errors.Add(new FieldError(field, "is required"));
            return false;
        }
        if (value.Length == 0)
        {
            errors.Add(new FieldError(field, required ? "is required" : "must not be empty (omit the field instead)"));
            return false;
        }
        return true;
    }

    public static void Duration(List<FieldError> errors, string field, string? value)
    {
        if (value is null) return;
        if (!GoDuration.TryParse(value, out var span, out var error))
            errors.Add(new FieldError(field, error));
        else if (span <= TimeSpan.Zero)
            errors.Add(new FieldError(field, $"'{value}' must be greater than zero"));
    }

    public static void CronSchedule(List<FieldError> errors, string field, string? value)
    {
        if (value is null) return;
        if (value.Length > 100 || !Matches(Cron(), value))
            errors.Add(new FieldError(field, $"'{value}' is not a cron schedule (five fields like '*/15 * * * *', or @hourly, @daily, …)"));
    }

    public static void DigestValue(List<FieldError> errors, string field, string? value)
    {
        if (string.IsNullOrEmpty(value)) { errors.Add(new FieldError(field, "is required")); return; }
        if (!Matches(Digest(), value))
            errors.Add(new FieldError(field, $"'{value}' is not a digest (sha256:<64 lower-case hex digits>)"));
    }

    public static void Range(List<FieldError> errors, string field, long? value, long min, long max)
    {
        if (value is { } v && (v < min || v > max))
            errors.Add(new FieldError(field, $"must be between {min} and {max}, is {v}"));
    }

    public static void MaxLength(List<FieldError> errors, string field, string? value, int max)
    {
        if (value is not null && value.Length > max)
            errors.Add(new FieldError(field, $"must be at most {max} characters"));
    }

    public static void Defined<TEnum>(List<FieldError> errors, string field, TEnum value) where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
            errors.Add(new FieldError(field, $"'{value}' is not one of {string.Join(", ", Enum.GetNames<TEnum>())}"));
    }
}
