using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Daemon;

/// <summary>
/// The node API's checkpoint endpoints on the root-only Unix socket:
/// <list type="bullet">
/// <item><c>POST /v1/checkpoints</c> with <c>{"namespace","pod","container","timeoutSeconds"}</c>: runs the node's
/// <see cref="ICheckpointRunner"/> and streams JSON lines (<c>application/x-ndjson</c>): one
/// <c>{"stage","message","bytes"}</c> per progress step, then <c>{"result":{…}}</c> or <c>{"error":{"message","kind"}}</c>.
/// Invalid input is a 400 with <c>{"error":…}</c> naming the field, before any stream starts.</item>
/// <item><c>GET /v1/checkpoints?namespace=&amp;workload=&amp;container=</c>: <c>{"items":[…]}</c> from the store, newest first.</item>
/// </list>
/// Handlers only validate, translate and delegate. The client going away cancels the checkpoint.
/// </summary>
internal static class NodeApiCheckpoints
{
    public const string Path = "/v1/checkpoints";
    public const string NdjsonContentType = "application/x-ndjson";

    public static void Map(WebApplication app)
    {
        app.MapPost(Path, PostCheckpoint);
        app.MapGet(Path, GetCheckpoints);
    }

    internal static async Task PostCheckpoint(HttpContext ctx)
    {
        CheckpointApiRequest? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync(ctx.Request.Body, NodeApiJson.Default.CheckpointApiRequest, ctx.RequestAborted);
        }
        catch (JsonException e)
        {
            await Problem(ctx, 400, $"the request body is not a valid checkpoint request: {e.Message}", "invalid");
            return;
        }
        if (body is null)
        {
            await Problem(ctx, 400, "the request body is empty; expected {\"namespace\",\"pod\",\"container\"}", "invalid");
            return;
        }
        if (TargetNames.Validate(body.Namespace, body.Pod, body.Container) is { } invalid)
        {
            await Problem(ctx, 400, invalid, "invalid");
            return;
        }
        if (body.TimeoutSeconds is <= 0 or > 24 * 3600)
        {
            await Problem(ctx, 400, $"timeoutSeconds must be between 1 and 86400, got {body.TimeoutSeconds}", "invalid");
            return;
        }
        var runner = ctx.RequestServices.GetService<ICheckpointRunner>();
        if (runner is null)
        {
            await Problem(ctx, 503, "this daemon cannot run checkpoints (no checkpoint runner is configured)", "unavailable");
            return;
        }

        var request = new CheckpointRequest(body.Namespace!, body.Pod!, string.IsNullOrEmpty(body.Container) ? null : body.Container)
        {
            Timeout = body.TimeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : null,
        };

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = NdjsonContentType;
        ctx.Response.Headers.CacheControl = "no-cache";
        await ctx.Response.StartAsync(ctx.RequestAborted);

        // progress may be reported from any thread; lines are written in order by this request's loop only
        var lines = Channel.CreateUnbounded<CheckpointStreamLine>(new UnboundedChannelOptions { SingleReader = true });
        var progress = new ChannelProgress(lines.Writer);
        var run = RunAsync(runner, request, progress, lines.Writer, ctx.RequestAborted);
        try
        {
            await foreach (var line in lines.Reader.ReadAllAsync(ctx.RequestAborted))
            {
                await JsonSerializer.SerializeAsync(ctx.Response.Body, line, NodeApiJson.Default.CheckpointStreamLine, ctx.RequestAborted);
                await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; the runner sees the same token
        }
        await run;
    }

    private static async Task RunAsync(ICheckpointRunner runner, CheckpointRequest request, ChannelProgress progress,
        ChannelWriter<CheckpointStreamLine> lines, CancellationToken ct)
    {
        CheckpointStreamLine last;
        try
        {
            var outcome = await runner.CheckpointAsync(request, progress, ct);
            last = new CheckpointStreamLine { Result = CheckpointApiResult.From(outcome) };
        }
        catch (Exception e)
        {
            var failed = e as CheckpointFailedException;
            last = new CheckpointStreamLine
            {
                Error = new CheckpointApiError(e.Message, ErrorKind(e, ct))
                {
                    CriuLog = failed?.CriuLog,
                    CriuLogPath = failed?.CriuLogPath,
                    Candidates = e is ContainerResolutionException { Candidates.Count: > 0 } r ? [.. r.Candidates] : null,
                },
            };
        }
        progress.Close();
        lines.TryWrite(last);
        lines.TryComplete();
    }

    /// <summary>The kind of failure the client sees (<c>error.kind</c>).</summary>
    internal static string ErrorKind(Exception e, CancellationToken requestAborted) => e switch
    {
        OperationCanceledException when requestAborted.IsCancellationRequested => "cancelled",
        OperationCanceledException or TimeoutException => "timeout",
        ContainerRuntimeException { Kind: ContainerRuntimeErrorKind.NotFound } => "not-found",
        ContainerRuntimeException { Kind: ContainerRuntimeErrorKind.NotSupported } => "not-supported",
        ContainerRuntimeException { Kind: ContainerRuntimeErrorKind.DeadlineExceeded } => "timeout",
        ContainerRuntimeException { Kind: ContainerRuntimeErrorKind.Unavailable } => "runtime-unavailable",
        ContainerRuntimeException { Kind: ContainerRuntimeErrorKind.Unauthorized } => "unauthorized",
        ContainerRuntimeException => "runtime",
        ArchiveRejectedException => "archive-rejected",
        CheckpointStoreException => "store",
        ArgumentException => "invalid",
        _ => "internal",
    };

    internal static async Task GetCheckpoints(HttpContext ctx)
    {
        var q = ctx.Request.Query;
        string? ns = Nonempty(q["namespace"]), workload = Nonempty(q["workload"]), container = Nonempty(q["container"]);
        if (ns is not null && !TargetNames.IsLabel(ns))
        {
            await Problem(ctx, 400, $"namespace '{ns}' is not a valid DNS-1123 label", "invalid");
            return;
        }
        if (workload is not null && !TargetNames.IsSubdomain(workload))
        {
            await Problem(ctx, 400, $"workload '{workload}' is not a valid DNS-1123 subdomain", "invalid");
            return;
        }
        if (container is not null && !TargetNames.IsLabel(container))
        {
            await Problem(ctx, 400, $"container '{container}' is not a valid DNS-1123 label", "invalid");
            return;
        }
        var store = ctx.RequestServices.GetService<ICheckpointStore>();
        if (store is null)
        {
            await Problem(ctx, 503, "this daemon has no checkpoint store", "unavailable");
            return;
        }
        var items = store.List(new CheckpointFilter(ns, workload, container));
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, new CheckpointListResponse([.. items]), NodeApiJson.Default.CheckpointListResponse, ctx.RequestAborted);
    }

    private static string? Nonempty(Microsoft.Extensions.Primitives.StringValues v) => v.Count > 0 && !string.IsNullOrEmpty(v[0]) ? v[0] : null;

    private static Task Problem(HttpContext ctx, int status, string message, string kind)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, new CheckpointStreamLine { Error = new CheckpointApiError(message, kind) },
            NodeApiJson.Default.CheckpointStreamLine, ctx.RequestAborted);
    }

    /// <summary>Turns progress reports into stream lines; reports after the result are dropped.</summary>
    private sealed class ChannelProgress(ChannelWriter<CheckpointStreamLine> writer) : IProgress<CheckpointProgress>
    {
        private volatile bool _closed;

        public void Report(CheckpointProgress value)
        {
            if (_closed) return;
            writer.TryWrite(new CheckpointStreamLine { Stage = value.Stage, Message = value.Message, Bytes = value.Bytes });
        }

        public void Close() => _closed = true;
    }
}

/// <summary>The names of a checkpoint target, checked as Kubernetes checks them (DNS-1123) before they go anywhere.</summary>
internal static partial class TargetNames
{
    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Label();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Subdomain();

    public static bool IsLabel(string? v) => v is { Length: > 0 and <= 63 } && Label().IsMatch(v);
    public static bool IsSubdomain(string? v) => v is { Length: > 0 and <= 253 } && Subdomain().IsMatch(v);

    /// <summary>Null when valid; otherwise a message naming the field.</summary>
    public static string? Validate(string? ns, string? pod, string? container)
    {
        if (string.IsNullOrEmpty(ns)) return "namespace is required";
        if (!IsLabel(ns)) return $"namespace '{ns}' is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)";
        if (string.IsNullOrEmpty(pod)) return "pod is required";
        if (!IsSubdomain(pod)) return $"pod '{pod}' is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)";
        if (!string.IsNullOrEmpty(container) && !IsLabel(container))
            return $"container '{container}' is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)";
        return null;
    }
}

internal sealed record CheckpointApiRequest
{
    public string? Namespace { get; init; }
    public string? Pod { get; init; }
    public string? Container { get; init; }
    public int? TimeoutSeconds { get; init; }
}

/// <summary>One line of the checkpoint stream: a progress step, the result, or the error.</summary>
internal sealed record CheckpointStreamLine
{
    public string? Stage { get; init; }
    public string? Message { get; init; }
    public long? Bytes { get; init; }
    public CheckpointApiResult? Result { get; init; }
    public CheckpointApiError? Error { get; init; }
}

internal sealed record CheckpointApiResult(
    string Id, string Path, long SizeBytes, string Digest, string Node, long RuntimeMs, long TotalMs)
{
    public string? Namespace { get; init; }
    public string? Workload { get; init; }
    public string? Container { get; init; }
    public string? ContainerId { get; init; }
    public long? UncompressedSizeBytes { get; init; }
    public string? Compression { get; init; }

    public static CheckpointApiResult From(CheckpointOutcome o) =>
        new(o.Checkpoint.Id, o.Checkpoint.ArchivePath, o.Checkpoint.Size, o.Checkpoint.Digest, o.Node,
            (long)o.RuntimeTime.TotalMilliseconds, (long)o.TotalTime.TotalMilliseconds)
        {
            Namespace = o.Checkpoint.Namespace,
            Workload = o.Checkpoint.Workload,
            Container = o.Checkpoint.Container,
            ContainerId = o.ContainerId,
            UncompressedSizeBytes = o.Checkpoint.UncompressedSize,
            Compression = o.Checkpoint.Compression.ToString().ToLower(CultureInfo.InvariantCulture),
        };
}

internal sealed record CheckpointApiError(string Message, string Kind)
{
    /// <summary>The end of CRIU's log when the runtime left one (a failed dump).</summary>
    public string? CriuLog { get; init; }
    public string? CriuLogPath { get; init; }
    /// <summary>The pod's containers, when the request did not name exactly one.</summary>
    public List<string>? Candidates { get; init; }
}

internal sealed record CheckpointListResponse(List<CheckpointInfo> Items);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(CompressionJsonConverter), typeof(AuthenticityJsonConverter)])]
[JsonSerializable(typeof(CheckpointApiRequest))]
[JsonSerializable(typeof(CheckpointStreamLine))]
[JsonSerializable(typeof(CheckpointListResponse))]
[JsonSerializable(typeof(List<CheckpointInfo>))]
internal sealed partial class NodeApiJson : JsonSerializerContext;

/// <summary>Compression as the manifests spell it: <c>"none"</c>, <c>"zstd"</c>.</summary>
internal sealed class CompressionJsonConverter() : JsonStringEnumConverter<CheckpointCompression>(JsonNamingPolicy.CamelCase);

/// <summary>Authenticity by name: <c>"verified"</c>, <c>"unsigned"</c>, <c>"invalid"</c>, <c>"otherKey"</c>, <c>"unchecked"</c>.</summary>
internal sealed class AuthenticityJsonConverter() : JsonStringEnumConverter<CheckpointAuthenticity>(JsonNamingPolicy.CamelCase);
