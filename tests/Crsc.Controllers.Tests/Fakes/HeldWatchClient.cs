using System.Runtime.CompilerServices;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Controllers.Tests.Fakes;

/// <summary>
/// One informer's view of a shared client whose watch events can be held back (<see cref="Hold"/>) and let through
/// later (<see cref="Release"/>), in order: the cache lags the API server as a real informer's does while its watch
/// is slow, so that a test can decide which of two caches sees a write first. Reads and writes go straight through.
/// </summary>
public sealed class HeldWatchClient<T>(IKubeResourceClient<T> inner) : IKubeResourceClient<T> where T : class, IKubernetesObject
{
    private volatile TaskCompletionSource _open = Open();

    public ResourceType<T> Type => inner.Type;

    /// <summary>From now on, watch events wait (a write made after this is not seen by the cache).</summary>
    public void Hold()
    {
        if (_open.Task.IsCompleted) _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Lets the held events through, in order.</summary>
    public void Release() => _open.TrySetResult();

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    public IAsyncEnumerable<WatchEvent<T>> WatchAsync(string? ns, WatchOptions options, CancellationToken ct) => WatchCoreAsync(ns, options, ct);

    private async IAsyncEnumerable<WatchEvent<T>> WatchCoreAsync(string? ns, WatchOptions options, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var ev in inner.WatchAsync(ns, options, ct).ConfigureAwait(false))
        {
            await _open.Task.WaitAsync(ct).ConfigureAwait(false);
            yield return ev;
        }
    }

    public Task<T> GetAsync(string? ns, string name, CancellationToken ct) => inner.GetAsync(ns, name, ct);

    public Task<KubeList<T>> ListAsync(string? ns, ListOptions options, CancellationToken ct) => inner.ListAsync(ns, options, ct);

    public Task<T> CreateAsync(T obj, CancellationToken ct) => inner.CreateAsync(obj, ct);

    public Task<T> UpdateAsync(T obj, CancellationToken ct) => inner.UpdateAsync(obj, ct);

    public Task<T> UpdateStatusAsync(T obj, CancellationToken ct) => inner.UpdateStatusAsync(obj, ct);

    public Task<T> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct, bool status = false,
        string? fieldManager = null, bool force = false) => inner.PatchAsync(ns, name, type, body, ct, status, fieldManager, force);

    public Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct) => inner.DeleteAsync(ns, name, options, ct);
}
