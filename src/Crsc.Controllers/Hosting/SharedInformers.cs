using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Hosting;

/// <summary>
/// client-go's shared informer factory: one <see cref="Informer{T}"/> per resource type and selection (namespace,
/// label and field selector), made on first request and handed to every later caller, so that two controllers
/// reading pods share one list, one watch and one cache. The <see cref="ControllerManager"/> runs every informer
/// handed out here; callers never run one themselves.
/// </summary>
public sealed class SharedInformers
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Selection, IInformer> _informers = [];
    private readonly List<IInformer> _order = [];
    private readonly IKubeApi _kube;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly HealthRegistry? _health;
    private bool _frozen;

    /// <param name="health">where each informer reports (one entry per informer, under its name)</param>
    public SharedInformers(IKubeApi kube, TimeProvider time, ILoggerFactory loggers, HealthRegistry? health = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        _kube = kube;
        _time = time;
        _loggers = loggers;
        _health = health;
    }

    /// <summary>Every informer handed out so far, in the order they were first asked for.</summary>
    public IReadOnlyList<IInformer> All
    {
        get { lock (_gate) return [.. _order]; }
    }

    /// <summary>
    /// The informer of <paramref name="type"/> for this selection (<see cref="InformerOptions.Namespace"/>,
    /// <see cref="InformerOptions.LabelSelector"/>, <see cref="InformerOptions.FieldSelector"/>). The first caller's
    /// other options (name, page size, resync) make it; later callers get that one whatever else they pass.
    /// </summary>
    public Informer<T> For<T>(ResourceType<T> type, InformerOptions? options = null) where T : class, IKubernetesObject
    {
        ArgumentNullException.ThrowIfNull(type);
        options ??= new InformerOptions();
        var selection = new Selection(type.Group, type.Plural, options.Namespace, options.LabelSelector, options.FieldSelector);
        lock (_gate)
        {
            if (_informers.TryGetValue(selection, out var existing)) return (Informer<T>)existing;
            if (_frozen)
                throw new InvalidOperationException($"the informers run already: {selection} must be asked for before the manager starts");
            var named = options.Name is null ? options with { Name = selection.DefaultName } : options;
            var informer = new Informer<T>(_kube.Resource(type), named, _time,
                _loggers.CreateLogger("Crsc.Informers." + type.Kind), _health);
            _informers[selection] = informer;
            _order.Add(informer);
            return informer;
        }
    }

    /// <summary>The pods scheduled to <paramref name="nodeName"/> (<c>spec.nodeName=&lt;node&gt;</c>): the node agent's view.</summary>
    public Informer<Pod> PodsOnNode(string nodeName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        return For(Resources.Pods, new InformerOptions { FieldSelector = $"spec.nodeName={nodeName}", Name = "informer/pods-on-node" });
    }

    /// <summary>No new selection after this (the manager runs a fixed set); asking again for one handed out is fine.</summary>
    internal void Freeze()
    {
        lock (_gate) _frozen = true;
    }

    private sealed record Selection(string Group, string Plural, string? Namespace, string? LabelSelector, string? FieldSelector)
    {
        public string DefaultName
        {
            get
            {
                var name = "informer/" + Plural;
                if (Namespace is not null) name += $" in {Namespace}";
                if (LabelSelector is not null) name += $" [{LabelSelector}]";
                if (FieldSelector is not null) name += $" [{FieldSelector}]";
                return name;
            }
        }

        public override string ToString() => DefaultName;
    }
}
