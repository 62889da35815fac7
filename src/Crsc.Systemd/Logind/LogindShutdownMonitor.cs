using System.Threading.Channels;
using Crsc.Controllers.Health;
using Crsc.Controllers.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Tmds.DBus.Protocol;

namespace Crsc.Systemd.Logind;

public sealed record LogindShutdownOptions
{
    /// <summary>The bus logind is on; null = the system bus (<c>DBUS_SYSTEM_BUS_ADDRESS</c>, else <c>/run/dbus/system_bus_socket</c>).</summary>
    public string? BusAddress { get; init; }

    /// <summary>Shown by <c>systemd-inhibit --list</c>.</summary>
    public string Who { get; init; } = "crsc";

    public string Why { get; init; } = "checkpointing containers before shutdown";

    /// <summary>Kept back from logind's delay for releasing the inhibitor and logging.</summary>
    public TimeSpan Margin { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The delay assumed when logind's <c>InhibitDelayMaxUSec</c> cannot be read (logind's own default).</summary>
    public TimeSpan DefaultDelay { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Holds a logind <em>delay</em> inhibitor for <c>shutdown</c> (org.freedesktop.login1 on the system bus, through
/// Tmds.DBus.Protocol) and, on <c>PrepareForShutdown(true)</c>, lets the <see cref="IShutdownListener"/> work within what
/// is left of <c>InhibitDelayMaxUSec</c>, then releases the inhibitor (closes its fd) so the shutdown goes on. On
/// <c>PrepareForShutdown(false)</c> (a shutdown cancelled) it tells the listener and takes the inhibitor again. Reports
/// the <c>shutdown</c> health entry: no bus or no logind is Degraded (containers are not checkpointed at shutdown), never
/// fatal — everything else works without it.
/// </summary>
public sealed partial class LogindShutdownMonitor(
    LogindShutdownOptions options,
    IShutdownListener listener,
    HealthRegistry health,
    TimeProvider time,
    ILogger logger)
{
    public const string Component = "shutdown";
    private const string Service = "org.freedesktop.login1";
    private const string ObjectPath = "/org/freedesktop/login1";
    private const string ManagerInterface = "org.freedesktop.login1.Manager";

    private SafeFileHandle? _inhibitor;
    private int _shutdowns;

    /// <summary>True while the delay inhibitor is held.</summary>
    public bool InhibitorHeld => Volatile.Read(ref _inhibitor) is { IsClosed: false };

    /// <summary>logind's <c>InhibitDelayMaxUSec</c>, once read.</summary>
    public TimeSpan? DelayMax { get; private set; }

    /// <summary><c>PrepareForShutdown(true)</c> handled since start.</summary>
    public int Shutdowns => Volatile.Read(ref _shutdowns);

    /// <summary>Runs until <paramref name="ct"/> fires or the bus goes away; never throws for the bus's sake.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var address = options.BusAddress ?? DBusAddress.System ?? "unix:path=/run/dbus/system_bus_socket";
        DBusConnection connection;
        try
        {
            connection = new DBusConnection(address);
            await connection.ConnectAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            health.Report(Component, HealthStatus.Degraded, $"no system bus at {address}: {e.Message}; containers are not checkpointed at shutdown");
            Log.NoBus(logger, address, e.Message);
            return;
        }
        using (connection)
        {
            var signals = Channel.CreateUnbounded<bool>();
            try
            {
                // subscribed before the inhibitor is taken: no announcement can come between them unseen
                await connection.WatchSignalAsync(Service, ObjectPath, ManagerInterface, "PrepareForShutdown",
                    static (Message m, object? _) => m.GetBodyReader().ReadBool(),
                    (Notification<bool> n) => { if (n.HasValue) signals.Writer.TryWrite(n.Value); },
                    ObserverFlags.None, false, null).ConfigureAwait(false);
                DelayMax = await ReadDelayMaxAsync(connection).ConfigureAwait(false);
                await TakeAsync(connection).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                health.Report(Component, HealthStatus.Degraded, $"logind not available on {address}: {e.Message}; containers are not checkpointed at shutdown");
                Log.NoLogind(logger, address, e.Message);
                return;
            }
            Report();
            Log.Holding(logger, DelayMax.Value.TotalSeconds, address);

            var disconnected = connection.DisconnectedAsync();
            try
            {
                while (true)
                {
                    var next = signals.Reader.WaitToReadAsync(ct).AsTask();
                    if (await Task.WhenAny(next, disconnected).ConfigureAwait(false) == disconnected)
                    {
                        var why = (await disconnected.ConfigureAwait(false))?.Message ?? "closed";
                        health.Report(Component, HealthStatus.Degraded, $"system bus connection lost: {why}; containers are not checkpointed at shutdown");
                        Log.Lost(logger, address, why);
                        return;
                    }
                    if (!await next.ConfigureAwait(false)) return;
                    while (signals.Reader.TryRead(out var start))
                    {
                        if (start) await ShutdownAsync(ct).ConfigureAwait(false);
                        else await CancelledAsync(connection).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
            finally
            {
                Release(); // the daemon stops: nothing to wait for any more
            }
        }
    }

    private async Task ShutdownAsync(CancellationToken ct)
    {
        var announced = time.GetTimestamp();
        var delay = DelayMax ?? options.DefaultDelay;
        var budget = delay - options.Margin;
        if (budget < TimeSpan.Zero) budget = TimeSpan.Zero;
        Log.Shutdown(logger, budget.TotalSeconds, InhibitorHeld);
        health.Report(Component, HealthStatus.Healthy, "shutting down: checkpointing the managed containers");
        try
        {
            await listener.ShuttingDownAsync(budget, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.ListenerFailed(logger, e);
        }
        finally
        {
            // after the work, never before: logind goes on with the shutdown as soon as the fd is closed
            Release();
            Interlocked.Increment(ref _shutdowns);
            Log.Released(logger, time.GetElapsedTime(announced).TotalSeconds);
            health.Report(Component, HealthStatus.Healthy, "shutting down: inhibitor released");
        }
    }

    private async Task CancelledAsync(DBusConnection connection)
    {
        listener.ShutdownCancelled();
        if (InhibitorHeld) return;
        try
        {
            await TakeAsync(connection).ConfigureAwait(false);
            Report();
            Log.TakenAgain(logger);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            health.Report(Component, HealthStatus.Degraded, $"delay inhibitor not taken again after a cancelled shutdown: {e.Message}");
            Log.NoLogind(logger, options.BusAddress ?? "the system bus", e.Message);
        }
    }

    private void Report() =>
        health.Report(Component, HealthStatus.Healthy, $"delay inhibitor held (logind allows {DelayMax!.Value.TotalSeconds:0.#} s)");

    private async Task TakeAsync(DBusConnection connection)
    {
        MessageBuffer call;
        using (var w = connection.GetMessageWriter())
        {
            w.WriteMethodCallHeader(Service, ObjectPath, ManagerInterface, "Inhibit", "ssss", MessageFlags.None);
            w.WriteString("shutdown");
            w.WriteString(options.Who);
            w.WriteString(options.Why);
            w.WriteString("delay");
            call = w.CreateMessage();
        }
        var fd = await connection.CallMethodAsync(call, static (Message m, object? _) => m.GetBodyReader().ReadHandle<SafeFileHandle>(), null)
            .ConfigureAwait(false);
        if (fd is null || fd.IsInvalid) throw new InvalidOperationException("logind answered Inhibit without a file descriptor");
        Interlocked.Exchange(ref _inhibitor, fd)?.Dispose();
    }

    private static async Task<TimeSpan> ReadDelayMaxAsync(DBusConnection connection)
    {
        MessageBuffer call;
        using (var w = connection.GetMessageWriter())
        {
            w.WriteMethodCallHeader(Service, ObjectPath, "org.freedesktop.DBus.Properties", "Get", "ss", MessageFlags.None);
            w.WriteString(ManagerInterface);
            w.WriteString("InhibitDelayMaxUSec");
            call = w.CreateMessage();
        }
        var usec = await connection.CallMethodAsync(call, static (Message m, object? _) => m.GetBodyReader().ReadVariantValue().GetUInt64(), null)
            .ConfigureAwait(false);
        return TimeSpan.FromMicroseconds(usec);
    }

    private void Release() => Interlocked.Exchange(ref _inhibitor, null)?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(60501, LogLevel.Warning, "No system bus at {Address} ({Reason}): running without a logind delay inhibitor, so containers are not checkpointed at shutdown")]
        public static partial void NoBus(ILogger logger, string address, string reason);

        [LoggerMessage(60502, LogLevel.Warning, "logind is not available on {Address} ({Reason}): running without a delay inhibitor, so containers are not checkpointed at shutdown")]
        public static partial void NoLogind(ILogger logger, string address, string reason);

        [LoggerMessage(60503, LogLevel.Information, "Holding a logind delay inhibitor for shutdown (InhibitDelayMaxUSec {Seconds} s) on {Address}")]
        public static partial void Holding(ILogger logger, double seconds, string address);

        [LoggerMessage(60504, LogLevel.Warning, "logind announced a shutdown: checkpointing within {Seconds:0.##} s (inhibitor held: {Held})")]
        public static partial void Shutdown(ILogger logger, double seconds, bool held);

        [LoggerMessage(60505, LogLevel.Information, "logind delay inhibitor released {Seconds:0.##} s after the shutdown was announced")]
        public static partial void Released(ILogger logger, double seconds);

        [LoggerMessage(60506, LogLevel.Error, "The shutdown work failed; releasing the inhibitor anyway")]
        public static partial void ListenerFailed(ILogger logger, Exception e);

        [LoggerMessage(60507, LogLevel.Information, "The shutdown was cancelled: holding the logind delay inhibitor again")]
        public static partial void TakenAgain(ILogger logger);

        [LoggerMessage(60508, LogLevel.Warning, "The system bus connection at {Address} was lost ({Reason}): containers are not checkpointed at shutdown")]
        public static partial void Lost(ILogger logger, string address, string reason);
    }
}
