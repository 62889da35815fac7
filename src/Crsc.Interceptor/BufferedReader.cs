using System.Buffers;
using System.Net.Sockets;

namespace Crsc.Interceptor;

/// <summary>
/// Reads a socket through one pooled buffer: the proxy looks at what is buffered (a request head, a chunk-size line),
/// consumes it, and copies bodies on from it without a second copy. The buffer grows only for a long head, up to a limit.
/// </summary>
internal sealed class BufferedReader(Socket socket, int initialSize, int maxSize) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    private int _start;
    private int _end;

    public Socket Socket => socket;
    public ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_start, _end - _start);
    public ReadOnlyMemory<byte> BufferedMemory => _buffer.AsMemory(_start, _end - _start);
    public int Count => _end - _start;
    /// <summary>True when the buffer is at its size limit and full: a head or line that still has no end is too long.</summary>
    public bool Full => _start == 0 && _end == _buffer.Length && _buffer.Length >= maxSize;

    public void Consume(int n)
    {
        _start += n;
        if (_start == _end) _start = _end = 0;
    }

    /// <summary>Reads more (compacting, and growing up to the limit when full). False at end of stream.</summary>
    public async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_start > 0 && _end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            if (_buffer.Length >= maxSize) throw new InvalidOperationException("buffer full");
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(maxSize, _buffer.Length * 2));
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        int n;
        try { n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted) { n = 0; }
        _end += n;
        return n > 0;
    }

    /// <summary>The index of the first CRLF in what is buffered, reading more until there is one. -1: the stream ended or the line is too long.</summary>
    public async ValueTask<int> LineAsync(CancellationToken ct)
    {
        var searched = 0;
        while (true)
        {
            var i = Buffered[searched..].IndexOf("\r\n"u8);
            if (i >= 0) return searched + i;
            searched = Math.Max(0, Count - 1);
            if (Full || !await FillAsync(ct)) return -1;
        }
    }

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, []);
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}

internal static class SocketWrites
{
    /// <summary>Sends all of <paramref name="data"/>.</summary>
    public static async ValueTask SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, ct);
            data = data[n..];
        }
    }
}
