using System.Globalization;

namespace Crsc.Storage.Oci;

/// <summary>What a <c>Range</c> request header asks of a blob of known length (RFC 9110 §14, single byte ranges).</summary>
public readonly record struct ByteRange(long Start, long Length)
{
    public long End => Start + Length - 1;

    /// <summary>
    /// <see cref="RangeRequest.Full"/> when there is no header, or one the server may ignore (another unit, bad syntax,
    /// several ranges: RFC 9110 lets a server answer those with the whole representation);
    /// <see cref="RangeRequest.Partial"/> with the satisfiable part of a single range;
    /// <see cref="RangeRequest.Unsatisfiable"/> when the range starts at or past the end (416).
    /// </summary>
    public static RangeRequest Parse(string? header, long length, out ByteRange range)
    {
        range = new ByteRange(0, length);
        if (string.IsNullOrWhiteSpace(header)) return RangeRequest.Full;
        var h = header.Trim();
        const string unit = "bytes=";
        if (!h.StartsWith(unit, StringComparison.OrdinalIgnoreCase)) return RangeRequest.Full;
        var spec = h[unit.Length..].Trim();
        if (spec.Contains(',', StringComparison.Ordinal)) return RangeRequest.Full;
        var dash = spec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0) return RangeRequest.Full;
        var first = spec[..dash].Trim();
        var last = spec[(dash + 1)..].Trim();
        if (first.Length == 0)
        {
            // suffix: the last N bytes
            if (!TryNumber(last, out var suffix)) return RangeRequest.Full;
            if (suffix == 0 || length == 0) return RangeRequest.Unsatisfiable;
            var n = Math.Min(suffix, length);
            range = new ByteRange(length - n, n);
            return RangeRequest.Partial;
        }
        if (!TryNumber(first, out var start)) return RangeRequest.Full;
        long end;
        if (last.Length == 0) end = length - 1;
        else if (!TryNumber(last, out end) || end < start) return RangeRequest.Full;
        if (start >= length) return RangeRequest.Unsatisfiable;
        end = Math.Min(end, length - 1);
        range = new ByteRange(start, end - start + 1);
        return RangeRequest.Partial;
    }

    private static bool TryNumber(string s, out long value) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}

public enum RangeRequest
{
    Full,
    Partial,
    Unsatisfiable,
}
