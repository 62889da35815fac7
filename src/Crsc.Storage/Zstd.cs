using System.Runtime.InteropServices;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>libzstd is not installed (Debian package <c>libzstd1</c>).</summary>
public sealed class ZstdUnavailableException(Exception inner)
    : CheckpointStoreException("zstd compression needs libzstd.so.1 (Debian package libzstd1), which could not be loaded: " + inner.Message, inner);

/// <summary>Streaming zstd through Debian's <c>libzstd.so.1</c>.</summary>
internal static unsafe partial class Zstd
{
    private const string Lib = "libzstd.so.1";

    // ZSTD_cParameter
    public const int CompressionLevelParam = 100;
    public const int ChecksumFlagParam = 201;
    public const int NbWorkersParam = 400;
    // ZSTD_EndDirective
    public const int Continue = 0;
    public const int End = 2;

    [StructLayout(LayoutKind.Sequential)]
    public struct InBuffer
    {
        public byte* Src;
        public nuint Size;
        public nuint Pos;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct OutBuffer
    {
        public byte* Dst;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(Lib, EntryPoint = "ZSTD_createCCtx")] public static partial nint CreateCCtx();
    [LibraryImport(Lib, EntryPoint = "ZSTD_freeCCtx")] public static partial nuint FreeCCtx(nint cctx);
    [LibraryImport(Lib, EntryPoint = "ZSTD_CCtx_setParameter")] public static partial nuint SetParameter(nint cctx, int param, int value);
    [LibraryImport(Lib, EntryPoint = "ZSTD_compressStream2")] public static partial nuint CompressStream2(nint cctx, OutBuffer* output, InBuffer* input, int endOp);
    [LibraryImport(Lib, EntryPoint = "ZSTD_CStreamOutSize")] public static partial nuint CStreamOutSize();
    [LibraryImport(Lib, EntryPoint = "ZSTD_createDCtx")] public static partial nint CreateDCtx();
    [LibraryImport(Lib, EntryPoint = "ZSTD_freeDCtx")] public static partial nuint FreeDCtx(nint dctx);
    [LibraryImport(Lib, EntryPoint = "ZSTD_decompressStream")] public static partial nuint DecompressStream(nint dctx, OutBuffer* output, InBuffer* input);
    [LibraryImport(Lib, EntryPoint = "ZSTD_DStreamInSize")] public static partial nuint DStreamInSize();
    [LibraryImport(Lib, EntryPoint = "ZSTD_DStreamOutSize")] public static partial nuint DStreamOutSize();
    [LibraryImport(Lib, EntryPoint = "ZSTD_isError")] public static partial uint IsError(nuint code);
    [LibraryImport(Lib, EntryPoint = "ZSTD_getErrorName")] public static partial nint GetErrorName(nuint code);
    [LibraryImport(Lib, EntryPoint = "ZSTD_versionString")] public static partial nint VersionString();

    /// <summary>The library's version; throws <see cref="ZstdUnavailableException"/> when it cannot be loaded.</summary>
    public static string Version
    {
        get
        {
            try { return Marshal.PtrToStringUTF8(VersionString()) ?? "?"; }
            catch (DllNotFoundException e) { throw new ZstdUnavailableException(e); }
            catch (EntryPointNotFoundException e) { throw new ZstdUnavailableException(e); }
        }
    }

    public static nuint Check(nuint code, string what)
    {
        if (IsError(code) != 0)
            throw new InvalidDataException($"zstd {what} failed: {Marshal.PtrToStringUTF8(GetErrorName(code))}");
        return code;
    }
}

/// <summary>
/// Compresses what is written into zstd frames handed to <c>sink</c> (never buffered beyond one output block).
/// Call <see cref="Finish"/> to end the frame.
/// </summary>
internal sealed unsafe class ZstdCompressor : IDisposable
{
    private readonly Action<ReadOnlySpan<byte>> _sink;
    private readonly byte[] _out;
    private nint _cctx;

    public ZstdCompressor(int level, int workers, Action<ReadOnlySpan<byte>> sink)
    {
        _sink = sink;
        try { _cctx = Zstd.CreateCCtx(); }
        catch (DllNotFoundException e) { throw new ZstdUnavailableException(e); }
        if (_cctx == 0) throw new OutOfMemoryException("ZSTD_createCCtx failed");
        Zstd.Check(Zstd.SetParameter(_cctx, Zstd.CompressionLevelParam, level), "setting the level");
        Zstd.Check(Zstd.SetParameter(_cctx, Zstd.ChecksumFlagParam, 1), "enabling checksums");
        if (workers > 0)
        {
            // a libzstd built without threads refuses this; compressing on the caller's thread is fine then
            _ = Zstd.SetParameter(_cctx, Zstd.NbWorkersParam, workers);
        }
        _out = new byte[(int)Zstd.CStreamOutSize()];
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_cctx == 0, this);
        fixed (byte* src = data)
        fixed (byte* dst = _out)
        {
            var input = new Zstd.InBuffer { Src = src, Size = (nuint)data.Length, Pos = 0 };
            while (input.Pos < input.Size)
            {
                var output = new Zstd.OutBuffer { Dst = dst, Size = (nuint)_out.Length, Pos = 0 };
                Zstd.Check(Zstd.CompressStream2(_cctx, &output, &input, Zstd.Continue), "compression");
                if (output.Pos > 0) _sink(_out.AsSpan(0, (int)output.Pos));
            }
        }
    }

    public void Finish()
    {
        ObjectDisposedException.ThrowIf(_cctx == 0, this);
        fixed (byte* dst = _out)
        {
            var input = new Zstd.InBuffer();
            nuint remaining;
            do
            {
                var output = new Zstd.OutBuffer { Dst = dst, Size = (nuint)_out.Length, Pos = 0 };
                remaining = Zstd.Check(Zstd.CompressStream2(_cctx, &output, &input, Zstd.End), "ending the frame");
                if (output.Pos > 0) _sink(_out.AsSpan(0, (int)output.Pos));
            } while (remaining != 0);
        }
    }

    public void Dispose()
    {
        if (_cctx != 0) { _ = Zstd.FreeCCtx(_cctx); _cctx = 0; }
    }
}

/// <summary>A read-only stream decompressing the zstd frames of an inner stream (which it owns).</summary>
internal sealed unsafe class ZstdDecompressStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly byte[] _in;
    private int _inPos, _inLen;
    private bool _innerEnded;
    private bool _frameOpen;
    private nint _dctx;

    public ZstdDecompressStream(Stream inner)
    {
        _inner = inner;
        try { _dctx = Zstd.CreateDCtx(); }
        catch (DllNotFoundException e) { throw new ZstdUnavailableException(e); }
        if (_dctx == 0) throw new OutOfMemoryException("ZSTD_createDCtx failed");
        _in = new byte[(int)Zstd.DStreamInSize()];
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_dctx == 0, this);
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            if (_inPos == _inLen && !_innerEnded)
            {
                _inLen = _inner.Read(_in, 0, _in.Length);
                _inPos = 0;
                if (_inLen == 0) _innerEnded = true;
            }
            if (_inPos == _inLen && _innerEnded && !_frameOpen) return 0;
            fixed (byte* src = _in)
            fixed (byte* dst = buffer)
            {
                var input = new Zstd.InBuffer { Src = src, Size = (nuint)_inLen, Pos = (nuint)_inPos };
                var output = new Zstd.OutBuffer { Dst = dst, Size = (nuint)buffer.Length, Pos = 0 };
                var hint = Zstd.Check(Zstd.DecompressStream(_dctx, &output, &input), "decompression");
                _inPos = (int)input.Pos;
                _frameOpen = hint != 0;
                if (output.Pos > 0) return (int)output.Pos;
            }
            if (_inPos == _inLen && _innerEnded)
            {
                if (_frameOpen) throw new InvalidDataException("the zstd stream is truncated (its last frame does not end)");
                return 0;
            }
        }
    }


    protected override void Dispose(bool disposing)
    {
        if (_dctx != 0) { _ = Zstd.FreeDCtx(_dctx); _dctx = 0; }
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}
