using System.Threading.Channels;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Runtime;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.StaticPods;

public sealed record StaticPodCheckpointerOptions
{
    public required StaticCheckpointPlannerOptions Planner { get; init; }
    public required StaticCheckpointPaths Paths { get; init; }

    /// <summary>How often a round runs when nothing pokes it (API server flips and pod changes do).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The health entry's name.</summary>
    public string HealthComponent { get; init; } = StaticPodCheckpointer.DefaultHealthComponent;
}

/// <summary>Where the API server's pods on this node come from; null while they are not known (informer not synced).</summary>
public delegate IReadOnlyList<Pod>? PodsOnNodeSource();

/// <summary>
/// The static-pod checkpointer's loop: every <see cref="StaticPodCheckpointerOptions.Interval"/>, and at once when
/// <see cref="Poke"/> is called, it reads the API server's view (pods on this node, only while
/// <see cref="ApiServerState"/> says reachable), the runtime's READY sandboxes and the checkpoints on disk, lets
/// <see cref="StaticCheckpointPlanner"/> decide, and carries the actions out through the store (Secrets and
/// ConfigMaps are fetched by name for each checkpoint written). Timers are saved after each round that changed
/// them. Reports <c>static-pods</c>: "N checkpoint(s), M active".
/// </summary>
public sealed partial class StaticPodCheckpointer
{
    public const string DefaultHealthComponent = "static-pods";

    private readonly IStaticManifestStore _store;
    private readonly IContainerRuntime _runtime;
    private readonly ApiServerState _api;
    private readonly PodsOnNodeSource _pods;
    private readonly IKubeResourceClient<Secret>? _secrets;
    private readonly IKubeResourceClient<ConfigMap>? _configMaps;
    private readonly StaticPodCheckpointerOptions _options;
    private readonly StaticCheckpointPlanner _planner;
    private readonly HealthRegistry? _health;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _poke = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly HashSet<string> _refusedLogged = [];
    private readonly Dictionary<(ObjectKey, StaticPodActionKind), string> _failuresLogged = [];
    private StaticCheckpointState? _state;
    private bool? _runtimeAnswered;

    public StaticPodCheckpointer(IStaticManifestStore store, IContainerRuntime runtime, ApiServerState api, PodsOnNodeSource pods,
        IKubeResourceClient<Secret>? secrets, IKubeResourceClient<ConfigMap>? configMaps, StaticPodCheckpointerOptions options,
        TimeProvider time, ILogger logger, HealthRegistry? health = null)
    {
        _store = store;
        _runtime = runtime;
        _api = api;
        _pods = pods;
        _secrets = secrets;
        _configMaps = configMaps;
        _options = options;
        _planner = new StaticCheckpointPlanner(options.Planner);
        _time = time;
        _logger = logger;
        _health = health;
    }

    public StaticPodCheckpointerOptions Options => _options;

    /// <summary>Asks for a round now (the API server flipped, a pod on the node changed).</summary>
    public void Poke() => _poke.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken ct)
    {
        void OnApiChanged(ApiServerObservation _) => Poke();
        _api.Changed += OnApiChanged;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await RunOnceAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    // a round that fails as a whole (e.g. the state file cannot be written) is retried at the next one
                    Log.RoundFailed(_logger, e);
                    _health?.Report(_options.HealthComponent, HealthStatus.Degraded, "failing: " + e.Message);
                }
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var delay = Task.Delay(_options.Interval, _time, wake.Token);
                var poked = _poke.Reader.WaitToReadAsync(wake.Token).AsTask();
                await Task.WhenAny(delay, poked).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                while (_poke.Reader.TryRead(out _)) { }
            }
        }
        finally
        {
            _api.Changed -= OnApiChanged;
        }
    }

    /// <summary>One round: observe, plan, act, save, report. Returns the actions carried out.</summary>
    public async Task<IReadOnlyList<StaticPodAction>> RunOnceAsync(CancellationToken ct)
    {
        _state ??= _store.LoadState();
        var reachable = _api.IsReachable;
        var pods = reachable ? _pods() : null;
        if (NothingToDo(pods))
        {
            // no checkpoint on disk, no timer, no annotated pod here: a node without static checkpoints asks nothing
            Report([], runtimeUnknown: false);
            return [];
        }
        var running = await RunningLocallyAsync(ct).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var plan = _planner.Plan(new StaticPodPlanInput(pods, reachable, running, _store.List(), _state, now));

        var state = new Dictionary<ObjectKey, StaticCheckpointTimers>(plan.State.Timers);
        var problems = new List<string>();
        var done = new List<StaticPodAction>();
        foreach (var action in plan.Actions)
        {
            try
            {
                switch (action.Kind)
                {
                    case StaticPodActionKind.Refuse:
                        if (_refusedLogged.Add(action.Reason)) Log.Refused(_logger, action.Parent.ToString(), action.Reason);
                        problems.Add(action.Reason);
                        continue;
                    case StaticPodActionKind.Checkpoint:
                        var changed = await CheckpointAsync(action.Pod!, ct).ConfigureAwait(false);
                        state[action.Parent] = (state.GetValueOrDefault(action.Parent) ?? new StaticCheckpointTimers())
                            with { WrittenVersion = action.Pod!.Metadata.ResourceVersion, WrittenAt = now };
                        if (changed) Log.Written(_logger, action.Parent.ToString(), action.Reason);
                        break;
                    case StaticPodActionKind.Activate:
                        _store.Activate(action.Parent);
                        Log.Activated(_logger, action.Parent.ToString(), action.Reason);
                        break;
                    case StaticPodActionKind.Deactivate:
                        _store.Deactivate(action.Parent);
                        Log.Deactivated(_logger, action.Parent.ToString(), action.Reason);
                        break;
                    case StaticPodActionKind.Remove:
                        _store.Remove(action.Parent);
                        state.Remove(action.Parent);
                        Log.Removed(_logger, action.Parent.ToString(), action.Reason);
                        break;
                }
                done.Add(action);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // logged when the failure is new or different; the next round tries again
                var failure = $"{action.Parent}: {action.Kind} failed: {e.Message}";
                if (_failuresLogged.GetValueOrDefault((action.Parent, action.Kind)) != e.Message)
                    Log.ActionFailed(_logger, e, action.Kind.ToString(), action.Parent.ToString());
                _failuresLogged[(action.Parent, action.Kind)] = e.Message;
                problems.Add(failure);
                continue;
            }
            _failuresLogged.Remove((action.Parent, action.Kind));
        }

        var next = new StaticCheckpointState(state);
        if (!next.SameAs(_state))
        {
            _store.SaveState(next);
        }
        _state = next;
        Report(problems, running is null);
        return done;
    }

    private bool NothingToDo(IReadOnlyList<Pod>? pods) =>
        _state!.Timers.Count == 0
        && _store.List().Count == 0
        && (pods is null || !pods.Any(p => StaticPodNames.IsParent(p, _planner.Options.NodeName)));

    private async Task<IReadOnlySet<ObjectKey>?> RunningLocallyAsync(CancellationToken ct)
    {
        try
        {
            var sandboxes = await _runtime.ListPodSandboxesAsync(new PodSandboxFilter(State: PodSandboxState.Ready), ct).ConfigureAwait(false);
            if (_runtimeAnswered == false) Log.RuntimeBack(_logger);
            _runtimeAnswered = true;
            return sandboxes.Where(s => s.State == PodSandboxState.Ready)
                .Select(s => new ObjectKey(s.Pod.Namespace, s.Pod.Name)).ToHashSet();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // without local truth nothing is activated or deactivated
            if (_runtimeAnswered != false) Log.RuntimeUnavailable(_logger, e.Message);
            _runtimeAnswered = false;
            return null;
        }
    }

    private async Task<bool> CheckpointAsync(Pod parent, CancellationToken ct)
    {
        var spec = StaticPodSanitizer.Sanitize(parent, _options.Paths);
        var ns = spec.Parent.Namespace!;
        var secrets = new List<StaticDataObject>();
        foreach (var source in spec.Secrets)
        {
            var data = await FetchAsync(_secrets, ns, source, "Secret", s => s.Data?.ToDictionary(kv => kv.Key, kv => kv.Value), ct)
                .ConfigureAwait(false);
            secrets.Add(new StaticDataObject(source.Name, Validated(data, "Secret", ns, source.Name)));
        }
        var configMaps = new List<StaticDataObject>();
        foreach (var source in spec.ConfigMaps)
        {
            var data = await FetchAsync(_configMaps, ns, source, "ConfigMap", c =>
            {
                var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                foreach (var (k, v) in c.Data ?? []) files[k] = System.Text.Encoding.UTF8.GetBytes(v);
                foreach (var (k, v) in c.BinaryData ?? []) files[k] = v;
                return files;
            }, ct).ConfigureAwait(false);
            configMaps.Add(new StaticDataObject(source.Name, Validated(data, "ConfigMap", ns, source.Name)));
        }
        return _store.WriteInactive(new StaticCheckpointData(spec.Parent, StaticPodManifest.Serialize(spec.Manifest), secrets, configMaps));
    }

    private static async Task<Dictionary<string, byte[]>?> FetchAsync<T>(IKubeResourceClient<T>? client, string ns, StaticDataSource source,
        string kind, Func<T, Dictionary<string, byte[]>?> files, CancellationToken ct) where T : class, IKubernetesObject
    {
        if (client is null) throw new InvalidOperationException($"no API client to read {kind} {ns}/{source.Name}");
        try
        {
            return files(await client.GetAsync(ns, source.Name, ct).ConfigureAwait(false)) ?? [];
        }
        catch (NotFoundException) when (source.Optional)
        {
            // an optional volume whose object does not exist mounts empty, as in the kubelet
            return [];
        }
        catch (NotFoundException)
        {
            throw new InvalidOperationException($"{kind} {ns}/{source.Name}, which the pod mounts, does not exist; the checkpoint is not updated");
        }
    }

    private static Dictionary<string, byte[]> Validated(Dictionary<string, byte[]>? files, string kind, string ns, string name)
    {
        foreach (var key in (files ?? []).Keys)
        {
            try { StaticPodNames.DataKeyName(key); }
            catch (InvalidStaticPodNameException e) { throw new InvalidOperationException($"{kind} {ns}/{name}: {e.Message}", e); }
        }
        return files ?? [];
    }

    private void Report(List<string> problems, bool runtimeUnknown)
    {
        if (_health is null) return;
        var stored = _store.List();
        var message = $"{stored.Count(c => c.Inactive)} checkpoint(s), {stored.Count(c => c.Active)} active";
        // the runtime's own entry says it does not answer; here it matters only for checkpoints that may need to run
        if (runtimeUnknown && stored.Count > 0) problems.Insert(0, "container runtime not answering (no activation or deactivation)");
        _health.Report(_options.HealthComponent, problems.Count == 0 ? HealthStatus.Healthy : HealthStatus.Degraded,
            problems.Count == 0 ? message : message + "; " + string.Join("; ", problems));
    }

    private static partial class Log
    {
        [LoggerMessage(21201, LogLevel.Information, "static-pod checkpoint of {Parent} written ({Reason})")]
        public static partial void Written(ILogger logger, string parent, string reason);

        [LoggerMessage(21202, LogLevel.Warning, "static-pod checkpoint of {Parent} activated: {Reason}")]
        public static partial void Activated(ILogger logger, string parent, string reason);

        [LoggerMessage(21203, LogLevel.Information, "static-pod checkpoint of {Parent} deactivated: {Reason}")]
        public static partial void Deactivated(ILogger logger, string parent, string reason);

        [LoggerMessage(21204, LogLevel.Information, "static-pod checkpoint of {Parent} removed: {Reason}")]
        public static partial void Removed(ILogger logger, string parent, string reason);

        [LoggerMessage(21205, LogLevel.Warning, "static-pod checkpoint: {Action} of {Parent} failed; retried next round")]
        public static partial void ActionFailed(ILogger logger, Exception exception, string action, string parent);

        [LoggerMessage(21206, LogLevel.Warning, "pod {Parent} is not checkpointed: {Reason}")]
        public static partial void Refused(ILogger logger, string parent, string reason);

        [LoggerMessage(21207, LogLevel.Warning, "static-pod checkpointer: the container runtime does not answer ({Reason}); no checkpoint is activated or deactivated until it does")]
        public static partial void RuntimeUnavailable(ILogger logger, string reason);

        [LoggerMessage(21208, LogLevel.Information, "static-pod checkpointer: the container runtime answers again")]
        public static partial void RuntimeBack(ILogger logger);

        [LoggerMessage(21209, LogLevel.Error, "static-pod checkpointer round failed; retried at the next one")]
        public static partial void RoundFailed(ILogger logger, Exception exception);
    }
}
