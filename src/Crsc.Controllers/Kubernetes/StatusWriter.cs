using System.Text.Json;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Kubernetes;

/// <summary>
/// The one read-modify-write for objects the informers share (client-go's <c>RetryOnConflict</c> around a
/// <c>Get</c>/<c>Update</c>): the change is applied to a deep copy, nothing is written when it changes nothing, and a
/// 409 reads the object again and applies the change to the fresh copy, so another writer's fields are kept.
/// </summary>
public static class StatusWriter
{
    /// <summary>Writes tried before the last 409 is thrown to the caller (whose controller requeues with backoff).</summary>
    public const int DefaultAttempts = 5;

    /// <summary>
    /// A deep copy through the type's source-generated JSON contract: cached objects are shared with the informer and
    /// never changed in place.
    /// </summary>
    public static T DeepCopy<T>(ResourceType<T> type, T obj) where T : class, IKubernetesObject =>
        JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(obj, type.Json), type.Json)!;

    /// <summary>
    /// Applies <paramref name="mutate"/> to a copy of <paramref name="current"/> and writes the status subresource.
    /// <paramref name="mutate"/> returns false when there is nothing to write (the guards of the caller: a replaced
    /// object, a change already made); it is called again on the object read after each 409.
    /// </summary>
    /// <returns>The object as the API server stored it; null when nothing was written (declined, or 404 on the write
    /// or the re-read). <paramref name="current"/> is never changed.</returns>
    /// <exception cref="ConflictException">still a 409 after <paramref name="attempts"/> writes</exception>
    public static Task<T?> UpdateStatusAsync<T>(IKubeResourceClient<T> client, T current, Func<T, bool> mutate,
        CancellationToken ct, int attempts = DefaultAttempts) where T : class, IKubernetesObject =>
        WriteAsync(client, current, mutate, static (c, o, ct) => c.UpdateStatusAsync(o, ct), attempts, ct);

    /// <summary>
    /// As <see cref="UpdateStatusAsync{T}"/>, for metadata and spec (a PUT of the object itself, e.g. finalizers).
    /// </summary>
    /// <exception cref="ConflictException">still a 409 after <paramref name="attempts"/> writes</exception>
    public static Task<T?> UpdateAsync<T>(IKubeResourceClient<T> client, T current, Func<T, bool> mutate,
        CancellationToken ct, int attempts = DefaultAttempts) where T : class, IKubernetesObject =>
        WriteAsync(client, current, mutate, static (c, o, ct) => c.UpdateAsync(o, ct), attempts, ct);

    private static async Task<T?> WriteAsync<T>(IKubeResourceClient<T> client, T current, Func<T, bool> mutate,
        Func<IKubeResourceClient<T>, T, CancellationToken, Task<T>> write, int attempts, CancellationToken ct)
        where T : class, IKubernetesObject
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        var ns = current.Metadata.Namespace;
        var name = current.Metadata.Name ?? throw new ArgumentException("the object has no name", nameof(current));
        var copy = DeepCopy(client.Type, current);
        for (var attempt = 1; ; attempt++)
        {
            if (!mutate(copy)) return null;
            try
            {
                return await write(client, copy, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return null;
            }
            catch (ConflictException) when (attempt < attempts)
            {
                // someone wrote first: decide again from the object as it is now
            }
            try
            {
                copy = await client.GetAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return null;
            }
        }
    }
}
