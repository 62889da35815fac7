using System.Collections.Frozen;
using System.ComponentModel;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Crsc.Systemd.Native;
using Microsoft.Win32.SafeHandles;
using Serilog.Core;
using Serilog.Debugging;
using Serilog.Events;

namespace Crsc.Systemd.Journal;

/// <summary>
/// A Serilog sink that writes to journald in its native protocol over the Unix datagram socket
/// <c>/run/systemd/journal/socket</c>. Each entry carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, LOGGER (the
/// source context), CODE_FILE/CODE_LINE/CODE_FUNC when properties give them, EXCEPTION and ERRNO, and every
/// property (scope values included) as an upper-case field. Multi-line values use the binary framing; entries
/// too large for a datagram go through a sealed memfd (or an unlinked file in /dev/shm) passed with SCM_RIGHTS.
/// A missing or dead journal never throws: the entry is counted as dropped and Serilog's SelfLog is told once
/// per outage. Thread-safe.
/// </summary>
public sealed class JournaldSink : ILogEventSink, IDisposable
{
    /// <summary>Fields the sink sets itself or that journald gives a meaning; properties with these names get a suffix.</summary>
    private static readonly FrozenSet<string> ReservedFields = FrozenSet.ToFrozenSet(
    [
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP",
        "SYSLOG_RAW", "EXCEPTION", "LOGGER", "DOCUMENTATION", "TID", "UNIT", "USER_UNIT", "INVOCATION_ID",
        "USER_INVOCATION_ID", "OBJECT_PID",
    ], StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, string> CodeLocationAliases = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["CallerFilePath"] = "CODE_FILE",
        ["CallerLineNumber"] = "CODE_LINE",
        ["CallerMemberName"] = "CODE_FUNC",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private const string ReservedSuffix = "_PROPERTY";

    private readonly JournaldSinkOptions _options;
    private readonly UnixSocketAddress _address;
    private readonly Lock _gate = new();
    private readonly JournalEntryWriter _entry = new();
    private readonly StringWriter _message = new(CultureInfo.InvariantCulture);
    private Socket? _socket;
    private bool _memfdUnavailable;
    private bool _failing;
    private bool _disposed;
    private long _written;
    private long _dropped;
    private long _passedAsFile;

    public JournaldSink(JournaldSinkOptions? options = null)
    {
        _options = options ?? new JournaldSinkOptions();
        if (!UnixSocketAddress.TryParse(_options.SocketPath, out var address, out var error))
            throw new ArgumentException($"journal socket '{_options.SocketPath}': {error}", nameof(options));
        if (string.IsNullOrEmpty(_options.SyslogIdentifier) || JournalEntryWriter.NeedsBinaryFraming(_options.SyslogIdentifier))
            throw new ArgumentException("SyslogIdentifier must be one non-empty line", nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_options.MaxDatagramBytes);
        _address = address!;
    }

    /// <summary>Entries handed to journald.</summary>
    public long EntriesWritten => Interlocked.Read(ref _written);

    /// <summary>Entries lost because the journal socket was missing, dead or full.</summary>
    public long EntriesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Entries that were too large for a datagram and went through a passed file descriptor.</summary>
    public long EntriesPassedAsFile => Interlocked.Read(ref _passedAsFile);

    public void Emit(LogEvent logEvent)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        lock (_gate)
        {
            if (_disposed)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }
            try
            {
                _entry.Clear();
                WriteEntry(logEvent);
                Send(_entry.WrittenSpan);
                Interlocked.Increment(ref _written);
                _failing = false;
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref _dropped);
                if (!_failing)
                {
                    _failing = true;
                    SelfLog.WriteLine("journald sink: cannot write to {0} ({1}); dropping entries until it works again", _address.Text, e.Message);
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _socket?.Dispose();
            _socket = null;
        }
    }

    private void WriteEntry(LogEvent logEvent)
    {
        _message.GetStringBuilder().Clear();
        logEvent.MessageTemplate.Render(logEvent.Properties, _message, _options.FormatProvider);
        _entry.Add("MESSAGE", _message.GetStringBuilder().ToString());
        _entry.Add("PRIORITY", JournalPriority.FromLevel(logEvent.Level));
        _entry.Add("SYSLOG_IDENTIFIER", _options.SyslogIdentifier);
        if (logEvent.Exception is { } exception) _entry.Add("EXCEPTION", exception.ToString());

        var hasErrno = false;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (name == "SourceContext" && value is ScalarValue { Value: string logger })
                _entry.Add("LOGGER", logger);
            if (name == "EventId" && value is StructureValue eventId)
            {
                // Microsoft.Extensions.Logging's EventId: { Id, Name } as two plain fields
                foreach (var part in eventId.Properties)
                {
                    if (part.Name == "Id") _entry.Add("EVENT_ID", JournalValueFormatter.Format(part.Value));
                    else if (part.Name == "Name") _entry.Add("EVENT_NAME", JournalValueFormatter.Format(part.Value));
                }
                continue;
            }

            var field = FieldNameFor(name);
            if (field is null) continue;
            var text = JournalValueFormatter.Format(value);
            if (field == "ERRNO")
            {
                if (hasErrno || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _)) field += ReservedSuffix;
                else hasErrno = true;
            }
            _entry.Add(field, text);
        }

        if (!hasErrno && logEvent.Exception is { } failure && ErrnoOf(failure) is { } errno)
            _entry.Add("ERRNO", errno);
    }

    private static string? FieldNameFor(string propertyName)
    {
        if (CodeLocationAliases.TryGetValue(propertyName, out var alias)) return alias;
        var field = JournalFieldName.Sanitize(propertyName);
        if (field is null || !ReservedFields.Contains(field)) return field;
        return field.Length + ReservedSuffix.Length <= JournalFieldName.MaxLength
            ? field + ReservedSuffix
            : field[..(JournalFieldName.MaxLength - ReservedSuffix.Length)] + ReservedSuffix;
    }

    /// <summary>The errno behind an exception, when it carries one (sockets, Win32Exception, errno-based IOException).</summary>
    internal static int? ErrnoOf(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is Win32Exception { NativeErrorCode: > 0 and < 4096 } win32) return win32.NativeErrorCode;
            if (e is IOException { HResult: > 0 and < 4096 } io) return io.HResult;
        }
        return null;
    }

    private void Send(ReadOnlySpan<byte> payload)
    {
        var socket = _socket ??= new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified)
        {
            SendTimeout = (int)Math.Clamp(_options.SendTimeout.TotalMilliseconds, 1, int.MaxValue),
        };
        if (payload.Length <= _options.MaxDatagramBytes)
        {
            try
            {
                socket.SendTo(payload, SocketFlags.None, _address.EndPoint);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.MessageSize or SocketError.NoBufferSpaceAvailable)
            {
                // too large for the socket after all: pass it as a file
            }
        }
        SendAsFile(socket, payload);
    }

    private void SendAsFile(Socket socket, ReadOnlySpan<byte> payload)
    {
        using var memfd = CreateSealedMemfd(payload);
        using var temp = memfd is null ? CreateUnlinkedTempFile(payload) : null;
        var file = memfd ?? temp!.SafeFileHandle;
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            var errno = FdPassing.SendDescriptor(socket.SafeHandle, _address, (int)file.DangerousGetHandle());
            if (errno != 0) throw new IOException($"sendmsg with SCM_RIGHTS: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
        Interlocked.Increment(ref _passedAsFile);
    }

    /// <summary>A memfd holding <paramref name="payload"/>, sealed against any change; null when memfds are not available.</summary>
    private SafeFileHandle? CreateSealedMemfd(ReadOnlySpan<byte> payload)
    {
        if (_memfdUnavailable || _options.DisableMemfd || !LibC.IsSupported) return null;
        int fd;
        try
        {
            fd = LibC.MemfdCreate("crsc-journal", LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
        }
        catch (EntryPointNotFoundException)
        {
            _memfdUnavailable = true;
            return null;
        }
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is LibC.ENOSYS or LibC.EINVAL)
            {
                _memfdUnavailable = true;
                SelfLog.WriteLine("journald sink: memfd_create is not available ({0}); large entries go through {1}",
                    Marshal.GetPInvokeErrorMessage(errno), _options.TempFileDirectory);
            }
            return null;
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var written = LibC.WriteAll(fd, payload);
        if (written != 0)
        {
            handle.Dispose();
            throw new IOException($"writing a journal entry to a memfd: {Marshal.GetPInvokeErrorMessage(written)}", written);
        }
        if (LibC.Fcntl(fd, LibC.F_ADD_SEALS, LibC.AllSeals) < 0)
        {
            // journald accepts an unsealed memfd only from root: use the temp file way instead
            handle.Dispose();
            return null;
        }
        return handle;
    }

    /// <summary>An already unlinked file in <see cref="JournaldSinkOptions.TempFileDirectory"/> holding <paramref name="payload"/>.</summary>
    private FileStream CreateUnlinkedTempFile(ReadOnlySpan<byte> payload)
    {
        var path = Path.Combine(_options.TempFileDirectory, "crsc-journal-" + Guid.NewGuid().ToString("N"));
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            BufferSize = 0,
        };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var file = new FileStream(path, options);
        try
        {
            File.Delete(path);
            file.Write(payload);
            return file;
        }
        catch
        {
            file.Dispose();
            try { File.Delete(path); }
            catch (IOException) { /* the original error matters more */ }
            throw;
        }
    }
}
