using System.Security.Cryptography;
using System.Text;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Presence;

/// <summary>
/// The names of the node agents' presence Leases: <c>crsc-node-&lt;node&gt;</c> in crsc's namespace, one per node,
/// renewed by that node's daemon (<see cref="NodeAgentLease"/>) and read by the leader
/// (<see cref="AbandonedCheckpointReconciler"/>) to tell whether crsc still runs there.
/// </summary>
public static class NodeLeases
{
    public const string Prefix = "crsc-node-";

    /// <summary>A Lease name is a DNS subdomain: at most 253 characters.</summary>
    private const int MaxName = 253;

    /// <summary>
    /// The Lease of <paramref name="node"/>: <c>crsc-node-&lt;node&gt;</c>; a node name too long for that is cut and
    /// ends with 16 hex digits of its SHA-256, so two long names never share a Lease.
    /// </summary>
    public static string NameFor(string node)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        var name = Prefix + node;
        if (name.Length <= MaxName) return name;
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(node)))[..16];
        var kept = node[..(MaxName - Prefix.Length - 1 - hash.Length)].TrimEnd('.', '-');
        return $"{Prefix}{kept}-{hash}";
    }
}

public sealed record NodeAgentLeaseOptions
{
    /// <summary>crsc's namespace, where the Lease lives (next to the leader's).</summary>
    public required string Namespace { get; init; }

    /// <summary>This node: the Lease is <see cref="NodeLeases.NameFor"/> it, and its holder.</summary>
    public required string NodeName { get; init; }

    /// <summary>How often the Lease is renewed.</summary>
    public TimeSpan RenewInterval { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Written as the Lease's <c>leaseDurationSeconds</c>: a reader that has not seen it renewed for this long may take
    /// the agent for gone (the leader waits that long before it lets go of a deleted node's checkpoints).
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Says "crsc runs on this node" to the cluster: renews the node's presence Lease every
/// <see cref="NodeAgentLeaseOptions.RenewInterval"/> (creating it the first time), like the kubelet's node Lease but
/// for crsc's node agent. Node work, not leader-only. An API server that is away is tried again at the next interval;
/// nothing here ever stops the daemon. The Lease is left in place when the daemon stops: a restart renews it, and an
/// uninstalled agent's Lease simply stops being renewed, which is what the leader looks for.
/// </summary>
public sealed class NodeAgentLease
{
    private readonly IKubeResourceClient<Lease> _leases;
    private readonly NodeAgentLeaseOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private Lease? _current;
    private bool _failing;

    public NodeAgentLease(IKubeApi kube, NodeAgentLeaseOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Namespace);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        if (options.RenewInterval <= TimeSpan.Zero || options.LeaseDuration <= options.RenewInterval)
            throw new ArgumentException("node lease: the lease duration must be longer than the renew interval", nameof(options));
        _leases = kube.Resource(Resources.Leases);
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        Name = NodeLeases.NameFor(options.NodeName);
    }

    /// <summary>The Lease's name in <see cref="NodeAgentLeaseOptions.Namespace"/>.</summary>
    public string Name { get; }

    /// <summary>Renews at once, then every renew interval, until <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await RenewAsync(ct).ConfigureAwait(false);
                if (_failing) Log.LeaseRenewed(_logger, _options.Namespace, Name);
                _failing = false;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // once per streak of failures: an API server that is away is the node agent's ordinary weather
                if (!_failing) Log.LeaseRenewFailed(_logger, e, _options.Namespace, Name, _options.RenewInterval);
                _failing = true;
            }
            try
            {
                await Task.Delay(_options.RenewInterval, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One renewal: an update of the Lease last written (a 404 or 409 makes the next one read it afresh), or a create.</summary>
    public async Task RenewAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var lease = _current;
        if (lease is null)
        {
            try
            {
                lease = await _leases.GetAsync(_options.Namespace, Name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                _current = await _leases.CreateAsync(New(now), ct).ConfigureAwait(false);
                return;
            }
        }
        lease.Spec.HolderIdentity = _options.NodeName;
        lease.Spec.LeaseDurationSeconds = (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds);
        lease.Spec.RenewTime = now;
        lease.Spec.AcquireTime ??= now;
        try
        {
            _current = await _leases.UpdateAsync(lease, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConflictException or NotFoundException)
        {
            _current = null; // someone else wrote it, or deleted it: read (or create) it again next time
            throw;
        }
    }

    private Lease New(DateTimeOffset now) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = Name,
            Namespace = _options.Namespace,
            Labels = new() { ["app.kubernetes.io/name"] = "crsc", ["app.kubernetes.io/component"] = "node-agent" },
        },
        Spec = new LeaseSpec
        {
            HolderIdentity = _options.NodeName,
            LeaseDurationSeconds = (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds),
            AcquireTime = now,
            RenewTime = now,
        },
    };
}
