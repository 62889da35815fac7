using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Testing.Kube;

namespace Crsc.Controllers.Tests.Fakes;

/// <summary>
/// One candidate's view of a shared <see cref="FakeResourceClient{T}"/>: its own network partition
/// (<see cref="Unavailable"/>) and a hook before each write, so that one process can be cut off while the others go on.
/// </summary>
public sealed class PartitionedClient<T>(IKubeResourceClient<T> inner) : IKubeResourceClient<T> where T : class, IKubernetesObject
{
    private int _writes;

    public volatile bool Unavailable;

    /// <summary>When set, every call fails with it (the API server answering with an error, e.g. a 403).</summary>
    public volatile Exception? Failure;

    /// <summary>Runs before an update is forwarded (e.g. another writer slipping in).</summary>
    public Func<T, Task>? BeforeUpdate { get; set; }

    public int Conflicts => Volatile.Read(ref _conflicts);
    private int _conflicts;

    public int Writes => Volatile.Read(ref _writes);

    public ResourceType<T> Type => inner.Type;

    private void Check()
    {
        if (Unavailable) throw new KubeUnavailableException("network partition (fake)");
        if (Failure is { } failure) throw failure;
    }

    public Task<T> GetAsync(string? ns, string name, CancellationToken ct) { Check(); return inner.GetAsync(ns, name, ct); }

    public Task<KubeList<T>> ListAsync(string? ns, ListOptions options, CancellationToken ct) { Check(); return inner.ListAsync(ns, options, ct); }

    public IAsyncEnumerable<WatchEvent<T>> WatchAsync(string? ns, WatchOptions options, CancellationToken ct) { Check(); return inner.WatchAsync(ns, options, ct); }

    public async Task<T> CreateAsync(T obj, CancellationToken ct)
    {
        Check();
        Interlocked.Increment(ref _writes);
        return await inner.CreateAsync(obj, ct);
    }

    public async Task<T> UpdateAsync(T obj, CancellationToken ct)
    {
        Check();
        Interlocked.Increment(ref _writes);
        if (BeforeUpdate is { } hook) await hook(obj);
        try
        {
            return await inner.UpdateAsync(obj, ct);
        }
        catch (ConflictException)
        {
            Interlocked.Increment(ref _conflicts);
            throw;
        }
    }

    public Task<T> UpdateStatusAsync(T obj, CancellationToken ct) { Check(); return inner.UpdateStatusAsync(obj, ct); }

    public Task<T> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct, bool status = false,
        string? fieldManager = null, bool force = false)
    {
        Check();
        return inner.PatchAsync(ns, name, type, body, ct, status, fieldManager, force);
    }

    public Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct) { Check(); return inner.DeleteAsync(ns, name, options, ct); }
}
