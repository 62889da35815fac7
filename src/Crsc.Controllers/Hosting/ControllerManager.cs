using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Hosting;

/// <summary>What every controller set up with a <see cref="ControllerManager"/> shares.</summary>
public sealed record ControllerManagerOptions
{
    public required IKubeApi Kube { get; init; }

    public required IEventRecorder Events { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public required ILoggerFactory Loggers { get; init; }

    /// <summary>Where every informer reports (one entry each); null: nowhere.</summary>
    public Health.HealthRegistry? InformerHealth { get; init; }

    /// <summary>Where every controller reports controller-runtime's metrics; null: nowhere.</summary>
    public ControllerMetrics? Metrics { get; init; }

    /// <summary>
    /// The Lease election whose terms run the leader-only controllers. Null: this manager is the only instance,
    /// and leader-only controllers run for its whole run (tests, benchmarks).
    /// </summary>
    public LeaderElector? Elector { get; init; }
}

/// <summary>
/// controller-runtime's manager: it owns the shared informers, the controllers and the other background work of
/// the cluster half, and the leadership term. <see cref="Add"/> registers a controller as node work (runs on every
/// instance for the whole run) or leader-only (runs only while this instance holds the Lease, cancelled and drained
/// when it loses it). An informer runs for the whole run unless every controller that watches it is leader-only;
/// then it runs for each term only and lists afresh in the next, so that followers keep no cluster-wide cache they
/// never read. The daemon and the tests set controllers up the same way: the <c>SetUp</c> method beside each
/// reconciler, given a manager.
/// </summary>
public sealed partial class ControllerManager
{
    private readonly Lock _gate = new();
    private readonly List<(Controller Controller, bool LeaderOnly)> _controllers = [];
    private readonly List<(string Name, Func<CancellationToken, Task> Run, bool LeaderOnly)> _runnables = [];
    private readonly ControllerManagerOptions _options;
    private readonly ILogger _logger;
    private IReadOnlySet<IInformer>? _leaderOnlyInformers;
    private int _started;

    public ControllerManager(ControllerManagerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = options.Loggers.CreateLogger<ControllerManager>();
        Informers = new SharedInformers(options.Kube, options.Time, options.Loggers, options.InformerHealth);
    }

    public SharedInformers Informers { get; }

    public IKubeApi Kube => _options.Kube;

    public IEventRecorder Events => _options.Events;

    public TimeProvider Time => _options.Time;

    public ILoggerFactory Loggers => _options.Loggers;

    public LeaderElector? Elector => _options.Elector;

    /// <summary>True while leader-only work runs (always true for the whole run without an elector).</summary>
    public bool IsLeading => Volatile.Read(ref _leading) != 0;

    private int _leading;

    /// <summary>The controllers added, each with whether it is leader-only.</summary>
    public IReadOnlyList<(Controller Controller, bool LeaderOnly)> Controllers
    {
        get { lock (_gate) return [.. _controllers]; }
    }

    /// <summary>The controller named <paramref name="name"/>; throws when there is none.</summary>
    public Controller Controller(string name)
    {
        lock (_gate)
            return _controllers.FirstOrDefault(c => c.Controller.Name == name).Controller
                ?? throw new InvalidOperationException($"no controller named {name}");
    }

    /// <summary>
    /// A controller named <paramref name="name"/> for <paramref name="reconciler"/> on the manager's clock and logs,
    /// with <paramref name="workers"/> keys reconciled at once; <see cref="Add"/> it once its watches are set.
    /// </summary>
    public Controller NewController(string name, IReconciler reconciler, int workers = 1) =>
        new(name, reconciler, Time, Loggers.CreateLogger<Controller>(), new ControllerOptions { Workers = workers });

    /// <summary>Registers <paramref name="controller"/> (before the manager runs). It reports into the manager's metrics.</summary>
    public Controller Add(Controller controller, bool leaderOnly)
    {
        ArgumentNullException.ThrowIfNull(controller);
        lock (_gate)
        {
            ThrowIfStarted();
            if (_controllers.Any(c => c.Controller.Name == controller.Name))
                throw new InvalidOperationException($"a controller named {controller.Name} was added already");
            if (_options.Metrics is { } metrics) controller.UseMetrics(metrics);
            _controllers.Add((controller, leaderOnly));
        }
        return controller;
    }

    /// <summary>
    /// Background work that is not a controller (an event recorder, a Lease renewal), run like one: for the whole run,
    /// or for each leadership term. A failure is logged and ends only it.
    /// </summary>
    public void AddRunnable(string name, Func<CancellationToken, Task> run, bool leaderOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(run);
        lock (_gate)
        {
            ThrowIfStarted();
            _runnables.Add((name, run, leaderOnly));
        }
    }

    /// <summary>
    /// True when <paramref name="informer"/> runs only while leading: every controller that watches it is
    /// leader-only. Settled when the manager starts; before that it answers for what has been added so far.
    /// </summary>
    public bool RunsOnlyWhileLeading(IInformer informer) =>
        (Volatile.Read(ref _leaderOnlyInformers) ?? LeaderOnlyInformers()).Contains(informer);

    /// <summary>The informers that run for the whole run (what the node itself reads).</summary>
    public IReadOnlyList<IInformer> NodeInformers => [.. Informers.All.Where(i => !RunsOnlyWhileLeading(i))];

    /// <summary>
    /// Runs the node informers, node controllers and node runnables until <paramref name="ct"/> fires, and, through
    /// the elector (or at once without one), the leader-only ones for each term. Returns when everything has stopped.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        List<(Controller Controller, bool LeaderOnly)> controllers;
        List<(string Name, Func<CancellationToken, Task> Run, bool LeaderOnly)> runnables;
        lock (_gate)
        {
            if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the manager runs already");
            Informers.Freeze();
            Volatile.Write(ref _leaderOnlyInformers, LeaderOnlyInformers());
            controllers = [.. _controllers];
            runnables = [.. _runnables];
        }
        var leaderOnly = _leaderOnlyInformers!;
        var running = new List<Task>();
        running.AddRange(Informers.All.Where(i => !leaderOnly.Contains(i)).Select(i => Guard(i.Name, () => i.RunAsync(ct))));
        running.AddRange(controllers.Where(c => !c.LeaderOnly).Select(c => Guard(c.Controller.Name, () => c.Controller.RunAsync(ct))));
        running.AddRange(runnables.Where(r => !r.LeaderOnly).Select(r => Guard(r.Name, () => r.Run(ct))));
        Task LeadTerm(CancellationToken term) =>
            LeadAsync([.. Informers.All.Where(leaderOnly.Contains)], [.. controllers.Where(c => c.LeaderOnly).Select(c => c.Controller)],
                [.. runnables.Where(r => r.LeaderOnly)], term);
        running.Add(_options.Elector is { } elector
            ? Guard("leader election", () => elector.RunAsync(LeadTerm, ct))
            : Guard("leader-only work", () => LeadTerm(ct)));
        await Task.WhenAll(running).ConfigureAwait(false);
    }

    /// <summary>One leadership term: the leader-only informers, controllers and runnables run until the term ends.</summary>
    private async Task LeadAsync(IReadOnlyList<IInformer> informers, IReadOnlyList<Controller> controllers,
        IReadOnlyList<(string Name, Func<CancellationToken, Task> Run, bool LeaderOnly)> runnables, CancellationToken term)
    {
        var identity = _options.Elector?.Identity ?? "no election";
        Log.Leading(_logger, identity, controllers.Count);
        Volatile.Write(ref _leading, 1);
        try
        {
            // a controller that ends before the term does is a failure: the elector then steps down
            using var informersStop = CancellationTokenSource.CreateLinkedTokenSource(term);
            var caches = informers.Select(i => Guard(i.Name, () => i.RunAsync(informersStop.Token))).ToList();
            var others = runnables.Select(r => Guard(r.Name, () => r.Run(term))).ToList();
            var work = controllers.Select(c => c.RunAsync(term)).ToList();
            try
            {
                await Task.WhenAll(work).ConfigureAwait(false);
            }
            finally
            {
                // the controllers have drained: the term's caches go with them (the next term lists afresh)
                await informersStop.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(caches).ConfigureAwait(false);
            }
            if (!term.IsCancellationRequested && work.Count > 0)
                throw new InvalidOperationException("a leader-only controller stopped before leadership ended");
            await Task.WhenAll(others).ConfigureAwait(false);
            if (!term.IsCancellationRequested) await Task.Delay(Timeout.InfiniteTimeSpan, _options.Time, term).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (term.IsCancellationRequested && _options.Elector is null)
        {
        }
        finally
        {
            Volatile.Write(ref _leading, 0);
            Log.NotLeading(_logger, identity);
        }
    }

    private HashSet<IInformer> LeaderOnlyInformers()
    {
        List<(Controller Controller, bool LeaderOnly)> controllers;
        lock (_gate) controllers = [.. _controllers];
        var result = new HashSet<IInformer>();
        foreach (var informer in Informers.All)
        {
            var watchers = controllers.Where(c => c.Controller.Informers.Contains(informer)).ToList();
            if (watchers.Count > 0 && watchers.All(c => c.LeaderOnly)) result.Add(informer);
        }
        return result;
    }

    private void ThrowIfStarted()
    {
        if (Volatile.Read(ref _started) != 0) throw new InvalidOperationException("the manager runs already");
    }

    /// <summary>
    /// No loop may take the others down: an unexpected failure, thrown at once or later, is logged and ends that loop
    /// only.
    /// </summary>
    private async Task Guard(string what, Func<Task> start)
    {
        try
        {
            await start().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            Log.LoopFailed(_logger, e, what);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(21401, LogLevel.Information, "leading: cluster reconcilers started ({Identity}, {Controllers} controllers)")]
        public static partial void Leading(ILogger logger, string identity, int controllers);

        [LoggerMessage(21402, LogLevel.Information, "leading: cluster reconcilers stopped ({Identity})")]
        public static partial void NotLeading(ILogger logger, string identity);

        [LoggerMessage(21403, LogLevel.Error, "The cluster loop {Loop} failed; the node agent goes on without it")]
        public static partial void LoopFailed(ILogger logger, Exception exception, string loop);
    }
}
