using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Informers;

/// <summary>
/// For the component factories: each informer a component reads is either passed in (shared with other components;
/// the caller runs it) or made here and kept in <see cref="Made"/>, which the component runs and reports as its own.
/// </summary>
public sealed class InformerSource(IKubeApi kube, TimeProvider time, ILoggerFactory loggers, HealthRegistry? health)
{
    /// <summary>The informers made here (not the ones passed in), in the order they were made.</summary>
    public List<IInformer> Made { get; } = [];

    /// <summary><paramref name="given"/>, or a new informer of <paramref name="type"/> logging as <paramref name="loggerCategory"/>.</summary>
    public Informer<T> UseOrMake<T>(Informer<T>? given, ResourceType<T> type, InformerOptions options, string loggerCategory)
        where T : class, IKubernetesObject
    {
        if (given is not null) return given;
        var informer = new Informer<T>(kube.Resource(type), options, time, loggers.CreateLogger(loggerCategory), health);
        Made.Add(informer);
        return informer;
    }
}
