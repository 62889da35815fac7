using System.Threading.Channels;
using Crsc.Controllers.Health;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Systemd;

/// <summary>
/// Keeps systemd's <c>STATUS=</c> line equal to <see cref="HealthRegistry.Summary"/>: every
/// <see cref="HealthRegistry.Changed"/> schedules one update after <see cref="CoalesceDelay"/>, so a burst
/// of changes costs one datagram. Sends <c>STOPPING=1</c> with a status as soon as the host begins to stop.
/// READY=1 is the composition root's to send, once the host has started: <see cref="NotifyReadyAsync"/>.
/// </summary>
public sealed class SystemdStatusReporter : IHostedLifecycleService, IDisposable
{
    public static readonly TimeSpan DefaultCoalesceDelay = TimeSpan.FromMilliseconds(200);

    private readonly SystemdNotifier _notifier;
    private readonly HealthRegistry _health;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;
    private string? _lastStatus;
    private bool _started;
    private bool _stopSent;
    private bool _disposed;
    private long _evaluations;

    public SystemdStatusReporter(SystemdNotifier notifier, HealthRegistry health, TimeProvider time, ILogger<SystemdStatusReporter> logger)
    {
        _notifier = notifier;
        _health = health;
        _time = time;
        _logger = logger;
    }

    /// <summary>How long a change waits for more changes before the STATUS line is sent.</summary>
    public TimeSpan CoalesceDelay { get; init; } = DefaultCoalesceDelay;

    /// <summary>Times the summary was read after a (burst of) change(s); for tests and diagnostics.</summary>
    internal long Evaluations => Interlocked.Read(ref _evaluations);

    /// <summary>The status sent last (null before the first one).</summary>
    public string? LastStatus { get { lock (_gate) return _lastStatus; } }

    /// <summary><c>READY=1</c> with <paramref name="status"/>, or the health summary when null.</summary>
    public async ValueTask<bool> NotifyReadyAsync(string? status = null, CancellationToken cancellationToken = default)
    {
        status ??= _health.Summary();
        var sent = await _notifier.NotifyReadyAsync(status, cancellationToken).ConfigureAwait(false);
        bool running;
        lock (_gate)
        {
            _lastStatus = status;
            running = _started && !_stopSent;
        }
        // The status loop may have sent a newer summary while this one was on its way: READY's STATUS= then
        // replaced it in systemd with an older line. One more evaluation sends the current summary if it differs.
        if (running) OnChanged();
        return sent;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_started || !_notifier.IsEnabled) return Task.CompletedTask;
            _started = true;
        }
        _health.Changed += OnChanged;
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs before any hosted service stops: says so to systemd right away.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => StopReportingAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => StopReportingAsync(cancellationToken);

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _health.Changed -= OnChanged;
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private void OnChanged() => _changes.Writer.TryWrite(true);

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            OnChanged(); // the current status, once
            while (await _changes.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                _changes.Reader.TryRead(out _);
                if (CoalesceDelay > TimeSpan.Zero)
                    await Task.Delay(CoalesceDelay, _time, cancellationToken).ConfigureAwait(false);
                // changes during the delay are covered by the summary read below
                _changes.Reader.TryRead(out _);
                var status = _health.Summary();
                bool changed;
                lock (_gate)
                {
                    changed = status != _lastStatus;
                    _lastStatus = status;
                }
                if (changed)
                {
                    await _notifier.NotifyStatusAsync(status, cancellationToken).ConfigureAwait(false);
                    Log.StatusSent(_logger, status);
                }
                Interlocked.Increment(ref _evaluations);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping
        }
        catch (Exception e)
        {
            Log.StatusLoopFailed(_logger, e);
        }
    }

    private async Task StopReportingAsync(CancellationToken cancellationToken)
    {
        bool send;
        lock (_gate)
        {
            send = !_stopSent;
            _stopSent = true;
        }
        if (!send) return;
        _health.Changed -= OnChanged;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false); // never faults: RunAsync catches everything
        if (!_notifier.IsEnabled) return;
        const string status = "stopping";
        lock (_gate) _lastStatus = status;
        try
        {
            await _notifier.NotifyStoppingAsync(status, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the host gave up waiting; systemd learns of the stop when the process exits
        }
    }
}
