using System.Globalization;
using Crsc.Controllers.Queue;

namespace Crsc.Controllers.Health;

/// <summary>
/// The health entry and retry pacing of a background loop that must keep running (the offline scheduler, the outbox
/// publisher): a round that throws is reported Degraded under <see cref="Component"/> ("failing since …: why; retrying
/// in …", so <c>/readyz</c> and systemd's STATUS line show it) and the loop waits an exponentially growing, jittered,
/// capped time before the next round; the first round that succeeds reports Healthy again and resets the wait.
/// Degraded, not Unhealthy: the rest of the daemon works, and a restart by the watchdog would not free a full disk.
/// Not thread-safe: one per loop.
/// </summary>
public sealed class LoopHealth
{
    private readonly HealthRegistry _health;
    private readonly TimeProvider _time;
    private readonly Backoff _backoff;
    private DateTimeOffset? _failingSince;

    public LoopHealth(string component, HealthRegistry health, TimeProvider time, TimeSpan initialRetry, TimeSpan maxRetry,
        Random? random = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(component);
        Component = component;
        _health = health;
        _time = time;
        // jitter up to half of each wait: the waits still grow, and loops that failed together do not retry together
        _backoff = new Backoff(initialRetry, maxRetry, jitter: 0.5, random);
    }

    public string Component { get; }

    /// <summary>Whether the last round failed.</summary>
    public bool Failing => _failingSince is not null;

    /// <summary>A round went through: Healthy with <paramref name="message"/>, and the next failure waits the shortest time.</summary>
    public void Succeeded(string message = "ok")
    {
        _failingSince = null;
        _backoff.Reset();
        _health.Report(Component, HealthStatus.Healthy, message);
    }

    /// <summary>A round threw <paramref name="error"/>: reports it and returns how long to wait before the next round.</summary>
    public TimeSpan Failed(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _failingSince ??= _time.GetUtcNow();
        var wait = _backoff.Next();
        var since = _failingSince.Value.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        _health.Report(Component, HealthStatus.Degraded, string.Create(CultureInfo.InvariantCulture,
            $"failing since {since}: {error.Message}; retrying in {Math.Ceiling(wait.TotalSeconds)} s"));
        return wait;
    }

    /// <summary>
    /// Runs rounds until <paramref name="ct"/> fires. A round does its work (reporting <see cref="Succeeded"/> itself)
    /// and returns what to wait on before the next one (a timer, a change of state); a round that throws is reported
    /// (<see cref="Failed"/>, then <paramref name="failed"/> with the wait, for the caller's log) and the next one comes
    /// after the backoff. Only cancellation ends the loop.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task<Task>> round, Action<Exception, TimeSpan> failed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(failed);
        while (!ct.IsCancellationRequested)
        {
            Task wake;
            try
            {
                wake = await round(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                var wait = Failed(e);
                failed(e, wait);
                wake = Task.Delay(wait, _time, ct);
            }
            try
            {
                await wake.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }
}
