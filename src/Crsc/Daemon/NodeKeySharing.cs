using System.Text;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Storage.Security;
using Crsc.Storage.StaticManifests;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>The Secret named by <c>security.keySecret</c> cannot be used, or adopting it would orphan this node's checkpoints.</summary>
internal sealed class SharedKeyException(string message) : Exception(message)
{
    public const string Key = "security.keySecret";
}

/// <summary>
/// Makes the node key the cluster's shared key (<c>security.keySecret</c>) before anything uses it. The Secret is the
/// source of truth: when it exists its key is written to the node's key file; when it does not, this node's key goes
/// into it (the first node to create it wins; a node that loses the race reads the winner's). When the API server
/// cannot be asked, the key file as last written is used and a warning says the shared key was not confirmed.
/// <para>
/// A node key that differs from the Secret's is replaced only while nothing on the node is signed by it: the old file
/// stays beside the new one as <c>node.key.&lt;id&gt;</c> (no key material is ever deleted). When checkpoints or static-pod
/// checkpoints signed by it exist, the node keeps its key and logs an error: replacing the key would make every one of them unverifiable,
/// so an operator decides (put this node's key into the Secret, or move those checkpoints away).
/// </para>
/// </summary>
internal static partial class NodeKeySharing
{
    /// <summary>The data key of the Secret that holds the key (64 hex digits).</summary>
    public const string DataKey = "key";

    /// <summary>How long the start waits for the API server before falling back to the key file.</summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The key this node uses from now on, stored at <see cref="NodeKey.PathIn"/> of <see cref="CrscOptions.StateDir"/>.
    /// <paramref name="secrets"/> is null when no API server is configured (or its configuration is unusable).
    /// </summary>
    /// <exception cref="SharedKeyException">the Secret holds no valid key, or adopting it would orphan signed checkpoints</exception>
    /// <exception cref="SecretFileException">the key file is unusable</exception>
    public static async Task<NodeKey> SyncAsync(CrscOptions options, IKubeResourceClient<Secret>? secrets, ILogger logger,
        CancellationToken ct, TimeSpan? wait = null)
    {
        var path = NodeKey.PathIn(options.StateDir);
        var local = NodeKey.LoadOrCreate(path, out _);
        if (options.SecurityKeySecret.Length == 0) return local;
        if (!ConfigValidator.TryParseSecretReference(options.SecurityKeySecret, out var ns, out var name))
            throw new SharedKeyException($"{SharedKeyException.Key}: '{options.SecurityKeySecret}' is not <namespace>/<name> of a Secret");
        var secret = $"{ns}/{name}";
        if (secrets is null)
        {
            Log.NotConfirmed(logger, secret, local.Id, "no usable API server is configured");
            return local;
        }

        NodeKey shared;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(wait ?? DefaultWait);
            try
            {
                shared = await FetchOrPublishAsync(secrets, ns, name, local, logger, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                Log.NotConfirmed(logger, secret, local.Id, $"the API server did not answer within {(wait ?? DefaultWait).TotalSeconds:0}s");
                return local;
            }
            catch (Exception e) when (e is KubeUnavailableException or HttpRequestException or KubeApiException and not NotFoundException)
            {
                // unreachable, or refusing (e.g. RBAC): the node agent goes on with the key it last had
                Log.NotConfirmed(logger, secret, local.Id, e.Message);
                return local;
            }
        }
        if (shared.Id == local.Id)
        {
            Log.Confirmed(logger, secret, local.Id);
            return local;
        }
        return Adopt(options, shared, local, path, secret, logger);
    }

    private static async Task<NodeKey> FetchOrPublishAsync(IKubeResourceClient<Secret> secrets, string ns, string name, NodeKey local,
        ILogger logger, CancellationToken ct)
    {
        try
        {
            return KeyOf(await secrets.GetAsync(ns, name, ct).ConfigureAwait(false), ns, name);
        }
        catch (NotFoundException)
        {
        }
        var created = new Secret
        {
            Metadata = new ObjectMeta
            {
                Name = name,
                Namespace = ns,
                Labels = new() { ["app.kubernetes.io/name"] = "crsc", ["app.kubernetes.io/part-of"] = "crsc" },
            },
            Type = "Opaque",
            Data = new() { [DataKey] = Encoding.ASCII.GetBytes(local.ToText().TrimEnd('\n')) },
        };
        try
        {
            await secrets.CreateAsync(created, ct).ConfigureAwait(false);
            Log.Published(logger, $"{ns}/{name}", local.Id);
            return local;
        }
        catch (AlreadyExistsException)
        {
            // another node created it first: its key is the cluster's
            return KeyOf(await secrets.GetAsync(ns, name, ct).ConfigureAwait(false), ns, name);
        }
    }

    private static NodeKey KeyOf(Secret secret, string ns, string name)
    {
        if (secret.Data?.GetValueOrDefault(DataKey) is not { } bytes)
            throw new SharedKeyException($"{SharedKeyException.Key}: Secret {ns}/{name} has no data key '{DataKey}' (it must hold the crsc key, 64 hex digits)");
        try
        {
            return NodeKey.Parse(Encoding.ASCII.GetString(bytes), $"Secret {ns}/{name}");
        }
        catch (FormatException)
        {
            throw new SharedKeyException($"{SharedKeyException.Key}: Secret {ns}/{name} data key '{DataKey}' does not hold a crsc key (64 hex digits)");
        }
    }

    private static NodeKey Adopt(CrscOptions options, NodeKey shared, NodeKey local, string path, string secret, ILogger logger)
    {
        var checkpoints = 0;
        var store = new ReadOnlyCheckpointStore(options.CheckpointDir, local);
        if (store.Exists) checkpoints = store.List().Count(c => c.Authenticity == CheckpointAuthenticity.Verified);
        var staticPods = DiskStaticManifestStore.CountSignedBy(options.StateDir, local.Id);
        if (checkpoints + staticPods > 0)
        {
            // turning the option on in a running cluster must not take its node agents down: this node keeps its own key
            // (its checkpoints stay restorable here) and says loudly that it does not share the cluster's
            Log.NotAdopted(logger, secret, shared.Id, path, local.Id, checkpoints, staticPods);
            return local;
        }

        // nothing is signed by the old key, but it is kept (not deleted) beside the new one
        var retired = $"{path}.{local.Id}";
        for (var n = 1; File.Exists(retired) || Directory.Exists(retired); n++) retired = $"{path}.{local.Id}.{n}";
        File.Move(path, retired, overwrite: false);
        NodeKey.Store(shared, path);
        var now = NodeKey.Load(path);
        if (now.Id != shared.Id)
            throw new SharedKeyException($"{SharedKeyException.Key}: {path} holds key {now.Id} after writing the key {shared.Id} of Secret {secret}; another process wrote it");
        Log.Adopted(logger, secret, shared.Id, local.Id, retired);
        return now;
    }

    private static partial class Log
    {
        [LoggerMessage(70705, LogLevel.Error, "Secret {Secret} holds key {SharedKeyId}, but this node's key {Path} is {KeyId} and signs {Checkpoints} checkpoint(s) and {StaticPods} static-pod checkpoint(s) here, which the shared key could not verify: this node keeps its own key, so restores across nodes fail to and from it; put this node's key into the Secret, or move those checkpoints away, then restart")]
        public static partial void NotAdopted(ILogger logger, string secret, string sharedKeyId, string path, string keyId, int checkpoints, int staticPods);

        [LoggerMessage(70701, LogLevel.Warning, "The shared key of Secret {Secret} could not be confirmed; using this node's key file as it is (key id {KeyId}): {Reason}")]
        public static partial void NotConfirmed(ILogger logger, string secret, string keyId, string reason);

        [LoggerMessage(70702, LogLevel.Information, "Node key {KeyId} is the shared key of Secret {Secret}")]
        public static partial void Confirmed(ILogger logger, string secret, string keyId);

        [LoggerMessage(70703, LogLevel.Information, "Secret {Secret} did not exist: created it with this node's key (key id {KeyId})")]
        public static partial void Published(ILogger logger, string secret, string keyId);

        [LoggerMessage(70704, LogLevel.Warning, "Node key is now the shared key {KeyId} of Secret {Secret}; the previous key {OldKeyId} signed nothing here and is kept as {Retired}")]
        public static partial void Adopted(ILogger logger, string secret, string keyId, string oldKeyId, string retired);
    }
}
