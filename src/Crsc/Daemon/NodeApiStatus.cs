using System.Text.Json;
using System.Text.Json.Serialization;
using Crsc.Api.Crds;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Daemon;

/// <summary>
/// <c>GET /v1/status</c> on the root-only node socket: what <c>crsc status</c> shows — the daemon's health entries,
/// what the node's runtime can do (the capability probe's last verdicts, with the fix), the store, this node's
/// schedules as the node agent last saw them, and the newest checkpoints. Read-only; built from what the daemon
/// already holds (no API server call, so it answers while the API server is away).
/// </summary>
internal static class NodeApiStatus
{
    public const string Path = "/v1/status";
    public const int RecentCheckpoints = 5;

    public static void Map(WebApplication app) => app.MapGet(Path, GetStatus);

    internal static Task GetStatus(HttpContext ctx)
    {
        var services = ctx.RequestServices;
        var options = services.GetRequiredService<CrscOptions>();
        var health = services.GetRequiredService<HealthRegistry>();
        var state = services.GetRequiredService<DaemonState>();
        var caps = services.GetService<DaemonNodeReportSource>()?.Last;
        var store = services.GetService<ICheckpointStore>();
        var checkpoints = store?.List() ?? [];
        var schedules = services.GetService<NodeAutonomy>()?.State.Current.Schedules ?? [];
        var away = services.GetService<Crsc.Controllers.Nodes.NodeGoingAway>()?.Current;
        var response = new NodeStatusResponse
        {
            Node = options.NodeName,
            Version = BuildInfo.Version,
            State = !state.Started ? "starting" : state.Stopping ? "stopping" : health.Overall.ToString().ToLowerInvariant(),
            Health = [.. health.Snapshot().Select(e => new NodeStatusHealth(e.Component, e.Status.ToString().ToLowerInvariant(), e.Message))],
            Runtime = caps is null ? null : new NodeStatusRuntime(caps.RuntimeName, caps.RuntimeVersion,
                Verdict(caps.Checkpoint), Verdict(caps.Restore)),
            Store = new NodeStatusStore(checkpoints.Count, checkpoints.Sum(c => c.Size)),
            PodCheckpointApi = services.GetService<DaemonNodeReportSource>()?.LastPodCheckpointApi,
            NodeState = away is null ? null : new NodeStatusNodeState(away.GoingAway, away.Reason?.ToString(), away.Detail, away.Since, away.Updated),
            Schedules = [.. schedules.Select(s => new NodeStatusSchedule(
                s.Schedule.Metadata.Namespace ?? "", s.Schedule.Metadata.Name ?? "",
                $"{s.Schedule.Spec.Target.Kind}/{s.Schedule.Spec.Target.Name}", s.Schedule.Spec.Interval ?? s.Schedule.Spec.Cron,
                s.Schedule.Spec.Suspend, s.Schedule.Status?.LastCheckpointTime, s.Schedule.Status?.NextCheckpointTime,
                s.Schedule.Status?.FindCondition(ConditionTypes.Ready) is { } ready ? $"{ready.Status}: {ready.Reason}" : null,
                s.Pods))],
            Checkpoints = [.. checkpoints.OrderByDescending(c => c.CreatedAt).Take(RecentCheckpoints).Select(c => new NodeStatusCheckpoint(
                c.Id, c.Namespace, c.Workload, c.Container, c.CreatedAt, c.Size))],
        };
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, response, NodeStatusJson.Default.NodeStatusResponse, ctx.RequestAborted);
    }

    private static NodeStatusVerdict Verdict(Capability c) => new(c.State.ToString(), c.Reason, c.Fix);
}

internal sealed record NodeStatusResponse
{
    public required string Node { get; init; }
    public required string Version { get; init; }
    /// <summary>starting, stopping, healthy, degraded or unhealthy.</summary>
    public required string State { get; init; }
    public List<NodeStatusHealth> Health { get; init; } = [];
    /// <summary>Null until the runtime monitor's first probe.</summary>
    public NodeStatusRuntime? Runtime { get; init; }
    public required NodeStatusStore Store { get; init; }
    /// <summary>Whether the API server serves the pod-level checkpoint API (KEP-5823); null when not asked (no API server).</summary>
    public string? PodCheckpointApi { get; init; }
    /// <summary>Whether this node is going away and why (the same as the published state.json).</summary>
    public NodeStatusNodeState? NodeState { get; init; }
    public List<NodeStatusSchedule> Schedules { get; init; } = [];
    public List<NodeStatusCheckpoint> Checkpoints { get; init; } = [];
}

internal sealed record NodeStatusHealth(string Component, string Status, string Message);

internal sealed record NodeStatusVerdict(string State, string Reason, string? Fix);

internal sealed record NodeStatusRuntime(string Name, string Version, NodeStatusVerdict Checkpoint, NodeStatusVerdict Restore);

internal sealed record NodeStatusStore(int Checkpoints, long Bytes);

internal sealed record NodeStatusNodeState(bool GoingAway, string? Reason, string? Detail, DateTimeOffset? Since, DateTimeOffset Updated);

internal sealed record NodeStatusSchedule(string Namespace, string Name, string Target, string? Every, bool? Suspended,
    DateTimeOffset? LastCheckpointTime, DateTimeOffset? NextCheckpointTime, string? Ready, List<string> Pods);

internal sealed record NodeStatusCheckpoint(string Id, string Namespace, string Workload, string Container, DateTimeOffset CreatedAt, long Size);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NodeStatusResponse))]
internal sealed partial class NodeStatusJson : JsonSerializerContext;
