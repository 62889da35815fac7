using System.Net.Sockets;
using System.Text;
using Crsc.Systemd.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Systemd;

/// <summary>
/// sd_notify(3) in C#: sends <c>KEY=VALUE</c> datagrams to the socket named by <c>NOTIFY_SOCKET</c>
/// (an absolute path or an abstract <c>@name</c>). Without a socket it is disabled and every call is a
/// no-op; a socket that is gone or refuses (ENOENT, ECONNREFUSED, …) is logged once at warning level
/// (then at debug) and never thrown to the caller. Thread-safe.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    public const string NotifySocketVariable = "NOTIFY_SOCKET";

    private readonly UnixSocketAddress? _address;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Socket? _socket;
    private bool _failing;
    private bool _disposed;

    /// <summary>
    /// A notifier for an explicit socket address (<c>/path</c> or <c>@abstract</c>); null or empty disables it.
    /// An address that is not usable disables it too, with a warning.
    /// </summary>
    public SystemdNotifier(string? socketAddress, ILogger<SystemdNotifier>? logger = null, TimeProvider? time = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        if (string.IsNullOrEmpty(socketAddress))
        {
            Log.NotifySocketNotSet(_logger);
            return;
        }
        if (!UnixSocketAddress.TryParse(socketAddress, out _address, out var error))
        {
            Log.NotifySocketUnusable(_logger, socketAddress, error!);
            return;
        }
        Log.NotifySocketInUse(_logger, socketAddress);
    }

    /// <summary>
    /// A notifier for the socket in <c>NOTIFY_SOCKET</c>. With <paramref name="unsetEnvironment"/> the variable is
    /// removed so that child processes (CRIU, runtimes) do not talk to systemd on our behalf.
    /// </summary>
    public static SystemdNotifier FromEnvironment(ILogger<SystemdNotifier>? logger = null, TimeProvider? time = null, bool unsetEnvironment = false)
    {
        var notifier = new SystemdNotifier(Environment.GetEnvironmentVariable(NotifySocketVariable), logger, time);
        if (unsetEnvironment) Environment.SetEnvironmentVariable(NotifySocketVariable, null);
        return notifier;
    }

    /// <summary>True when there is a socket to notify (the daemon runs under systemd with <c>Type=notify</c>).</summary>
    public bool IsEnabled => _address is not null;

    /// <summary>The socket address in use, as given; null when disabled.</summary>
    public string? SocketAddress => _address?.Text;

    /// <summary><c>READY=1</c> (and <c>STATUS=</c> when given): start-up is finished.</summary>
    public ValueTask<bool> NotifyReadyAsync(string? status = null, CancellationToken cancellationToken = default)
        => NotifyAsync(WithStatus([new("READY", "1")], status), cancellationToken);

    /// <summary><c>STATUS=</c>: one line saying what the daemon does.</summary>
    public ValueTask<bool> NotifyStatusAsync(string status, CancellationToken cancellationToken = default)
        => NotifyAsync([new("STATUS", status)], cancellationToken);

    /// <summary><c>STOPPING=1</c> (and <c>STATUS=</c> when given): shutdown has begun.</summary>
    public ValueTask<bool> NotifyStoppingAsync(string? status = null, CancellationToken cancellationToken = default)
        => NotifyAsync(WithStatus([new("STOPPING", "1")], status), cancellationToken);

    /// <summary><c>WATCHDOG=1</c>: keep-alive ping.</summary>
    public ValueTask<bool> NotifyWatchdogAsync(CancellationToken cancellationToken = default)
        => NotifyAsync([new("WATCHDOG", "1")], cancellationToken);

    /// <summary><c>RELOADING=1</c> with <c>MONOTONIC_USEC=</c> (as <c>Type=notify-reload</c> requires); send READY=1 when done.</summary>
    public ValueTask<bool> NotifyReloadingAsync(string? status = null, CancellationToken cancellationToken = default)
        => NotifyAsync(WithStatus([new("RELOADING", "1"), new("MONOTONIC_USEC", MonotonicMicroseconds(_time).ToString(System.Globalization.CultureInfo.InvariantCulture))], status), cancellationToken);

    /// <summary><c>ERRNO=</c> (and <c>STATUS=</c> when given): the errno-style reason the service is failing.</summary>
    public ValueTask<bool> NotifyErrnoAsync(int errno, string? status = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(errno);
        return NotifyAsync(WithStatus([new("ERRNO", errno.ToString(System.Globalization.CultureInfo.InvariantCulture))], status), cancellationToken);
    }

    /// <summary>
    /// Sends the fields as one datagram. True when delivered; false when disabled or the socket failed (logged,
    /// never thrown). Only the cancellation of <paramref name="cancellationToken"/> is thrown.
    /// </summary>
    public async ValueTask<bool> NotifyAsync(IReadOnlyList<KeyValuePair<string, string>> fields, CancellationToken cancellationToken = default)
    {
        var message = NotifyMessage.Format(fields);
        if (_address is null) return false;
        var payload = Encoding.UTF8.GetBytes(message);
        try
        {
            var socket = GetSocket();
            await socket.SendToAsync(payload, SocketFlags.None, _address.EndPoint, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Failed(e);
            return false;
        }
        Succeeded();
        return true;
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

    /// <summary>CLOCK_MONOTONIC in microseconds (the system TimeProvider's timestamps are CLOCK_MONOTONIC on Linux).</summary>
    internal static long MonotonicMicroseconds(TimeProvider time)
    {
        var ticks = time.GetTimestamp();
        var frequency = time.TimestampFrequency;
        return (long)((Int128)ticks * 1_000_000 / frequency);
    }

    private static KeyValuePair<string, string>[] WithStatus(KeyValuePair<string, string>[] fields, string? status)
        => status is null ? fields : [.. fields, new("STATUS", status)];

    private Socket GetSocket()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _socket ??= new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        }
    }

    private void Failed(Exception e)
    {
        var error = e is SocketException s ? $"{s.SocketErrorCode}: {s.Message}" : e.Message;
        bool first;
        lock (_gate)
        {
            first = !_failing;
            _failing = true;
        }
        if (first) Log.NotifyFailedFirst(_logger, _address!.Text, error);
        else Log.NotifyFailedAgain(_logger, _address!.Text, error);
    }

    private void Succeeded()
    {
        bool recovered;
        lock (_gate)
        {
            recovered = _failing;
            _failing = false;
        }
        if (recovered) Log.NotifyRecovered(_logger, _address!.Text);
    }
}
