using Crsc.Controllers.Runtime;

namespace Crsc.Controllers.Restores;

/// <summary>A pull through the node's runtime, bounded by crsc's own clock.</summary>
internal static class ImagePulls
{
    /// <exception cref="TimeoutException">the pull took longer than <paramref name="limit"/></exception>
    public static async Task PullAsync(IContainerRuntime runtime, string image, RegistryAuth? auth, PodIdentity sandbox, TimeSpan limit,
        TimeProvider time, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(limit, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            await runtime.PullImageAsync(image, auth, sandbox, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"pulling {image} took longer than {limit}");
        }
    }
}
