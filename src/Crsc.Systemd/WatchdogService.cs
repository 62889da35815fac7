using Crsc.Controllers.Health;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Systemd;

/// <summary>
/// Feeds the systemd watchdog: <c>WATCHDOG=1</c> every half <c>WATCHDOG_USEC</c>, but only while the
/// <see cref="HealthRegistry"/> is not <see cref="HealthStatus.Unhealthy"/>, so that systemd restarts a daemon
/// that stays broken. Does nothing when the watchdog or the notify socket is off.
/// </summary>
public sealed class WatchdogService(
    SystemdNotifier notifier,
    HealthRegistry health,
    WatchdogSettings settings,
    TimeProvider time,
    ILogger<WatchdogService> logger) : BackgroundService
{
    private long _ticks;
    private long _pings;
    private bool _withholding;

    public bool IsEnabled => settings.IsEnabled && notifier.IsEnabled;

    /// <summary>Ticks evaluated so far (a ping sent or withheld); for tests and diagnostics.</summary>
    internal long Ticks => Interlocked.Read(ref _ticks);

    /// <summary>Pings handed to the notifier so far.</summary>
    internal long Pings => Interlocked.Read(ref _pings);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!settings.IsEnabled)
        {
            Log.WatchdogOff(logger, settings.DisabledReason ?? "no interval");
            return;
        }
        if (!notifier.IsEnabled)
        {
            Log.WatchdogOff(logger, $"{SystemdNotifier.NotifySocketVariable} is not usable");
            return;
        }
        var period = settings.PingPeriod;
        Log.WatchdogOn(logger, settings.Interval!.Value, period);
        using var timer = new PeriodicTimer(period, time);
        try
        {
            do
            {
                await TickAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (health.Overall == HealthStatus.Unhealthy)
            {
                if (!_withholding) Log.WatchdogWithheld(logger, health.Summary());
                _withholding = true;
                return;
            }
            if (_withholding) Log.WatchdogResumed(logger, health.Summary());
            _withholding = false;
            await notifier.NotifyWatchdogAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _pings);
        }
        finally
        {
            Interlocked.Increment(ref _ticks);
        }
    }
}
