using System.Net.Sockets;
using System.Text;

namespace Crsc.Interceptor;

/// <summary>How the body after a head is framed (RFC 9112 §6).</summary>
internal enum BodyKind { None, ContentLength, Chunked, UntilClose }

/// <summary>What the proxy needs of a request or response head; the head itself is forwarded byte for byte.</summary>
internal sealed record HttpHead(int Length, string Method, string Target, int Status, bool Http10, BodyKind Body, long ContentLength, bool Close, bool Upgrade)
{
    /// <summary>Parses a head (start line to the empty line, <paramref name="length"/> bytes). Null when it is not HTTP/1.x.</summary>
    public static HttpHead? Parse(ReadOnlySpan<byte> head, int length, bool response, out string? problem)
    {
        problem = null;
        var text = head[..length];
        var eol = text.IndexOf("\r\n"u8);
        var start = Encoding.ASCII.GetString(text[..eol]);
        var parts = start.Split(' ', 3);
        string method = "", target = "", version;
        var status = 0;
        if (response)
        {
            if (parts.Length < 2 || !int.TryParse(parts[1], out status) || status is < 100 or > 999) { problem = "bad status line"; return null; }
            version = parts[0];
        }
        else
        {
            if (parts.Length != 3) { problem = "bad request line"; return null; }
            method = parts[0];
            target = parts[1];
            version = parts[2];
        }
        if (!version.StartsWith("HTTP/1.", StringComparison.Ordinal)) { problem = $"not HTTP/1.x ('{version}')"; return null; }
        var http10 = version == "HTTP/1.0";
        var close = http10;
        var chunked = false;
        var upgrade = false;
        long contentLength = -1;
        var rest = text[(eol + 2)..];
        while (rest.Length > 2)
        {
            var e = rest.IndexOf("\r\n"u8);
            var line = rest[..e];
            rest = rest[(e + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) { problem = "bad header line"; return null; }
            var name = line[..colon];
            var value = Encoding.ASCII.GetString(line[(colon + 1)..]).Trim();
            if (name.SequenceEqual("Content-Length"u8) || Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
                    || (contentLength >= 0 && contentLength != n)) { problem = $"bad Content-Length '{value}'"; return null; }
                contentLength = n;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                var last = value.Split(',')[^1].Trim();
                if (last.Equals("chunked", StringComparison.OrdinalIgnoreCase)) chunked = true;
                else if (!response) { problem = $"Transfer-Encoding '{value}' does not end in chunked"; return null; }
                else { chunked = false; contentLength = -2; } // a response read until close
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                foreach (var token in value.Split(','))
                {
                    var t = token.Trim();
                    if (t.Equals("close", StringComparison.OrdinalIgnoreCase)) close = true;
                    else if (t.Equals("keep-alive", StringComparison.OrdinalIgnoreCase) && http10) close = false;
                    else if (t.Equals("upgrade", StringComparison.OrdinalIgnoreCase)) upgrade = true;
                }
            }
        }
        BodyKind body;
        if (chunked) { body = BodyKind.Chunked; if (contentLength >= 0) close = true; } // both: chunked wins, and the connection ends (§6.3)
        else if (contentLength == -2) body = BodyKind.UntilClose;
        else if (contentLength >= 0) body = contentLength == 0 ? BodyKind.None : BodyKind.ContentLength;
        else body = response ? BodyKind.UntilClose : BodyKind.None;
        if (body == BodyKind.UntilClose) close = true;
        return new HttpHead(length, method, target, status, http10, body, contentLength, close, upgrade);
    }

    /// <summary>The body framing of a response to a request with <paramref name="requestMethod"/> (HEAD, 1xx, 204 and 304 have none).</summary>
    public BodyKind ResponseBody(string requestMethod) =>
        requestMethod == "HEAD" || Status is (>= 100 and < 200) or 204 or 304 ? BodyKind.None : Body;
}

internal static class Http1
{
    /// <summary>
    /// Reads until a whole head is buffered; its length (through the empty line), 0 at a clean end of stream before any
    /// byte, -1 when the stream ended inside a head, -2 when the head is longer than the buffer allows.
    /// </summary>
    public static async ValueTask<int> ReadHeadAsync(BufferedReader reader, CancellationToken ct)
    {
        var searched = 0;
        while (true)
        {
            // leading empty lines before a request line are ignored (RFC 9112 §2.2)
            while (reader.Count >= 2 && reader.Buffered[0] == '\r' && reader.Buffered[1] == '\n') reader.Consume(2);
            var i = reader.Buffered[searched..].IndexOf("\r\n\r\n"u8);
            if (i >= 0) return searched + i + 4;
            searched = Math.Max(0, reader.Count - 3);
            if (reader.Full) return -2;
            if (!await reader.FillAsync(ct)) return reader.Count == 0 ? 0 : -1;
        }
    }

    /// <summary>
    /// Copies one body framed as <paramref name="kind"/> from <paramref name="from"/> to <paramref name="to"/> (null: reads
    /// and drops it), byte for byte (chunk lines and trailers included). False when the stream ended or broke the framing.
    /// </summary>
    /// <param name="capture">Also keeps the body's data (without chunk framing) there: the replay log's copy.</param>
    /// <param name="raw">Also keeps every byte copied (chunk framing included) there: the copy a retry sends again.</param>
    public static async ValueTask<bool> CopyBodyAsync(BufferedReader from, Socket? to, BodyKind kind, long length, CancellationToken ct,
        BodyCapture? capture = null, BodyCapture? raw = null)
    {
        switch (kind)
        {
            case BodyKind.None: return true;
            case BodyKind.ContentLength: return await CopyExactAsync(from, to, length, ct, capture, raw);
            case BodyKind.UntilClose:
                while (true)
                {
                    if (from.Count > 0)
                    {
                        if (to is not null) await to.SendAllAsync(from.BufferedMemory, ct);
                        from.Consume(from.Count);
                    }
                    if (!await from.FillAsync(ct)) return true;
                }
            default:
                while (true)
                {
                    var eol = await from.LineAsync(ct);
                    if (eol < 0) return false;
                    var line = from.Buffered[..eol];
                    var semi = line.IndexOf((byte)';');
                    var hex = Encoding.ASCII.GetString(semi >= 0 ? line[..semi] : line).Trim();
                    if (!long.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var size) || size < 0)
                        return false;
                    if (!await CopyExactAsync(from, to, eol + 2, ct, null, raw)) return false;
                    if (size == 0)
                    {
                        // trailer fields, then the empty line
                        while (true)
                        {
                            var t = await from.LineAsync(ct);
                            if (t < 0) return false;
                            if (!await CopyExactAsync(from, to, t + 2, ct, null, raw)) return false;
                            if (t == 0) return true;
                        }
                    }
                    if (!await CopyExactAsync(from, to, size, ct, capture, raw)) return false;
                    var end = await from.LineAsync(ct);
                    if (end != 0) return false; // the CRLF after the chunk's data
                    if (!await CopyExactAsync(from, to, 2, ct, null, raw)) return false;
                }
        }
    }

    private static async ValueTask<bool> CopyExactAsync(BufferedReader from, Socket? to, long count, CancellationToken ct, BodyCapture? capture = null,
        BodyCapture? raw = null)
    {
        while (count > 0)
        {
            if (from.Count == 0 && !await from.FillAsync(ct)) return false;
            var n = (int)Math.Min(count, from.Count);
            capture?.Add(from.Buffered[..n]);
            raw?.Add(from.Buffered[..n]);
            if (to is not null) await to.SendAllAsync(from.BufferedMemory[..n], ct);
            from.Consume(n);
            count -= n;
        }
        return true;
    }

    /// <summary>A request head's target and header fields (Latin-1, as on the wire), for the replay log.</summary>
    public static (string Target, List<KeyValuePair<string, string>> Headers) RequestParts(ReadOnlySpan<byte> head)
    {
        var lines = Encoding.Latin1.GetString(head).Split("\r\n");
        var target = lines[0].Split(' ', 3)[1];
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            if (line.Length == 0) continue;
            var colon = line.IndexOf(':');
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        return (target, headers);
    }

    /// <summary>A complete response with no body worth reading: 503 with Retry-After, 400, 431, 502.</summary>
    public static byte[] SimpleResponse(int status, string reason, string message, bool close, TimeSpan? retryAfter = null)
    {
        var body = message + "\n";
        var sb = new StringBuilder();
        sb.Append("HTTP/1.1 ").Append(status).Append(' ').Append(reason).Append("\r\n");
        if (retryAfter is { } r) sb.Append("Retry-After: ").Append((long)Math.Ceiling(r.TotalSeconds)).Append("\r\n");
        sb.Append("Content-Type: text/plain; charset=utf-8\r\n");
        sb.Append("Content-Length: ").Append(Encoding.UTF8.GetByteCount(body)).Append("\r\n");
        if (close) sb.Append("Connection: close\r\n");
        sb.Append("\r\n").Append(body);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}

/// <summary>A request body kept for the replay log, up to a limit (past it: <see cref="TooLarge"/>, nothing more kept).</summary>
internal sealed class BodyCapture(long limit)
{
    private readonly System.Buffers.ArrayBufferWriter<byte> _written = new();

    public bool TooLarge { get; private set; }
    public ReadOnlyMemory<byte> Written => _written.WrittenMemory;

    public void Add(ReadOnlySpan<byte> data)
    {
        if (TooLarge) return;
        if (_written.WrittenCount + (long)data.Length > limit)
        {
            TooLarge = true;
            _written.Clear();
            return;
        }
        System.Buffers.BuffersExtensions.Write(_written, data);
    }
}
