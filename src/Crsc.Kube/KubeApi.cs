using System.Collections.Concurrent;
using System.Text.Json;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Kube;

/// <summary>
/// One API server connection: hands out typed <see cref="IKubeResourceClient{T}"/>s that share its HTTP connection
/// pool, trust and credentials.
/// </summary>
public sealed class KubeApi : IKubeApi, IDisposable
{
    private readonly ConcurrentDictionary<object, object> _clients = new();
    private readonly ILoggerFactory _loggers;

    public KubeApi(KubeClientConfig config, ILoggerFactory? loggerFactory = null)
    {
        Config = config;
        _loggers = loggerFactory ?? NullLoggerFactory.Instance;
        Http = new KubeHttp(config, _loggers.CreateLogger("Crsc.Kube.KubeApi"));
    }

    /// <summary>From a kubeconfig file (its current context unless <paramref name="context"/> names one).</summary>
    public static KubeApi FromKubeconfig(string path, string? context = null, ILoggerFactory? loggerFactory = null)
        => new(KubeConfigLoader.FromFile(path, context), loggerFactory);

    /// <summary>From the pod's service account.</summary>
    public static KubeApi InCluster(ILoggerFactory? loggerFactory = null)
        => new(KubeConfigLoader.InCluster(), loggerFactory);

    public KubeClientConfig Config { get; }

    /// <summary>The context's (or service account's) namespace.</summary>
    public string DefaultNamespace => Config.Namespace;

    internal KubeHttp Http { get; }

    public IKubeResourceClient<T> Resource<T>(ResourceType<T> type) where T : class, IKubernetesObject
        => (IKubeResourceClient<T>)_clients.GetOrAdd(type,
            static (key, api) => new KubeResourceClient<T>(api, (ResourceType<T>)key,
                api._loggers.CreateLogger("Crsc.Kube.KubeResourceClient")), this);

    /// <summary><c>GET /version</c>: the server's <c>gitVersion</c>. A cheap "is it there" probe.</summary>
    public async Task<string> GetVersionAsync(CancellationToken ct)
    {
        using var response = await Http.SendAsync(HttpMethod.Get, "/version", null, null, streaming: false, ct).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.TryGetProperty("gitVersion", out var v) ? v.GetString() ?? "" : "";
    }

    /// <summary>
    /// The versions of API group <paramref name="group"/> the server serves (discovery, <c>GET /apis/&lt;group&gt;</c>),
    /// e.g. <c>checkpoint.k8s.io/v1alpha1</c>; empty when it does not serve the group (404).
    /// </summary>
    public async Task<IReadOnlyList<string>> GetGroupVersionsAsync(string group, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        try
        {
            using var response = await Http.SendAsync(HttpMethod.Get, "/apis/" + Uri.EscapeDataString(group), null, null, streaming: false, ct)
                .ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(text);
            if (!doc.RootElement.TryGetProperty("versions", out var versions) || versions.ValueKind != JsonValueKind.Array) return [];
            return [.. versions.EnumerateArray()
                .Select(v => v.TryGetProperty("groupVersion", out var gv) ? gv.GetString() : null)
                .OfType<string>()];
        }
        catch (NotFoundException)
        {
            return [];
        }
    }

    public void Dispose() => Http.Dispose();
}
