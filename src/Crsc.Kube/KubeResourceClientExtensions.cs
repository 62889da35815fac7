using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Kube;

public static class KubeResourceClientExtensions
{
    /// <summary>Every page of a list (following <c>continue</c>), with the resourceVersion of the first page.</summary>
    public static async Task<KubeList<T>> ListAllAsync<T>(this IKubeResourceClient<T> client, string? ns, ListOptions? options,
        CancellationToken ct, int pageSize = 500) where T : class, IKubernetesObject
    {
        options ??= new ListOptions();
        var first = await client.ListAsync(ns, options with { Limit = pageSize, Continue = null }, ct).ConfigureAwait(false);
        var next = first.Metadata.Continue;
        while (!string.IsNullOrEmpty(next))
        {
            var page = await client.ListAsync(ns, options with { Limit = pageSize, Continue = next }, ct).ConfigureAwait(false);
            first.Items.AddRange(page.Items);
            next = page.Metadata.Continue;
        }
        first.Metadata.Continue = null;
        first.Metadata.RemainingItemCount = null;
        return first;
    }
}
