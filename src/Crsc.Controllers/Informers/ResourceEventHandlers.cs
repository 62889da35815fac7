using Crsc.Api;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Informers;

/// <summary>
/// Told about every change the informer applies to its cache, in order, on the informer's thread. Keep it quick
/// (enqueue a key); never mutate the objects, they are the cache's.
/// </summary>
public interface IResourceEventHandler<in T> where T : class, IKubernetesObject
{
    void OnAdd(T obj);
    /// <summary>A change, or a periodic resync (then <paramref name="oldObj"/> is <paramref name="newObj"/>).</summary>
    void OnUpdate(T oldObj, T newObj);
    /// <summary><paramref name="obj"/> is the last state the informer knew.</summary>
    void OnDelete(T obj);
}

/// <summary>An <see cref="IResourceEventHandler{T}"/> made of delegates; missing ones do nothing.</summary>
public sealed class ResourceEventHandler<T>(
    Action<T>? onAdd = null,
    Action<T, T>? onUpdate = null,
    Action<T>? onDelete = null) : IResourceEventHandler<T> where T : class, IKubernetesObject
{
    public void OnAdd(T obj) => onAdd?.Invoke(obj);
    public void OnUpdate(T oldObj, T newObj) => onUpdate?.Invoke(oldObj, newObj);
    public void OnDelete(T obj) => onDelete?.Invoke(obj);
}

/// <summary>Handlers that turn object changes into work-queue keys (controller-runtime's event handlers).</summary>
public static class EnqueueHandlers
{
    /// <summary>Enqueues the changed object's own key.</summary>
    public static IResourceEventHandler<T> ForObject<T>(Action<ObjectKey> enqueue) where T : class, IKubernetesObject
        => new ResourceEventHandler<T>(
            o => enqueue(KeyOf(o)),
            (_, n) => enqueue(KeyOf(n)),
            o => enqueue(KeyOf(o)));

    /// <summary>
    /// Enqueues the keys of the objects' owners of kind <paramref name="ownerKind"/> (in the object's namespace);
    /// on an update, the owners before and after. With <paramref name="onlyController"/>, only the owner marked
    /// <c>controller: true</c>.
    /// </summary>
    public static IResourceEventHandler<T> ForOwner<T>(string ownerKind, Action<ObjectKey> enqueue,
        string? ownerApiGroup = null, bool onlyController = false) where T : class, IKubernetesObject
    {
        void Owners(T obj)
        {
            foreach (var key in OwnerKeys(obj, ownerKind, ownerApiGroup, onlyController)) enqueue(key);
        }
        return new ResourceEventHandler<T>(Owners, (o, n) =>
        {
            var keys = new HashSet<ObjectKey>(OwnerKeys(o, ownerKind, ownerApiGroup, onlyController));
            keys.UnionWith(OwnerKeys(n, ownerKind, ownerApiGroup, onlyController));
            foreach (var key in keys) enqueue(key);
        }, Owners);
    }

    /// <summary>Enqueues whatever keys <paramref name="map"/> derives from the changed object.</summary>
    public static IResourceEventHandler<T> ForMapped<T>(Func<T, IEnumerable<ObjectKey>> map, Action<ObjectKey> enqueue)
        where T : class, IKubernetesObject
    {
        void Mapped(T obj)
        {
            foreach (var key in map(obj)) enqueue(key);
        }
        return new ResourceEventHandler<T>(Mapped, (o, n) =>
        {
            var keys = new HashSet<ObjectKey>(map(o));
            keys.UnionWith(map(n));
            foreach (var key in keys) enqueue(key);
        }, Mapped);
    }

    /// <summary>The owners of <paramref name="obj"/> of the given kind, as keys in the object's namespace.</summary>
    public static IEnumerable<ObjectKey> OwnerKeys(IKubernetesObject obj, string ownerKind, string? ownerApiGroup = null,
        bool onlyController = false)
    {
        var refs = obj.Metadata.OwnerReferences;
        if (refs is null) yield break;
        foreach (var owner in refs)
        {
            if (owner.Kind != ownerKind || string.IsNullOrEmpty(owner.Name)) continue;
            if (onlyController && owner.Controller != true) continue;
            if (ownerApiGroup is not null && GroupOf(owner.ApiVersion) != ownerApiGroup) continue;
            yield return new ObjectKey(KeyOf(obj).Namespace, owner.Name);
        }
    }

    /// <summary>The cache key of an object (an empty namespace means cluster-scoped).</summary>
    public static ObjectKey KeyOf(IKubernetesObject obj)
        => new(string.IsNullOrEmpty(obj.Metadata.Namespace) ? null : obj.Metadata.Namespace, obj.Metadata.Name ?? "");

    private static string GroupOf(string apiVersion)
    {
        var slash = apiVersion.IndexOf('/');
        return slash < 0 ? "" : apiVersion[..slash];
    }
}
