using System.Text.Json;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// The event recorder's sink with the outbox behind it: while the API server answers, events go straight to it; an
/// event it cannot take because it is unreachable (or while it is known to be) goes to the outbox and is published
/// in order when it is back. Only when the outbox is full too is the event lost (the recorder logs the failure).
/// </summary>
public sealed class OutboxEventSink(IEventSink inner, Func<IOutbox?> outbox, ApiServerState apiServer, OutboxStatus? status = null)
    : IEventSink
{
    public Task CreateAsync(CoreEvent ev, CancellationToken ct) => WriteAsync(ev, OutboxRecordKind.Event, inner.CreateAsync, ct);

    public Task UpdateRepeatAsync(CoreEvent ev, CancellationToken ct) => WriteAsync(ev, OutboxRecordKind.EventRepeat, inner.UpdateRepeatAsync, ct);

    private async Task WriteAsync(CoreEvent ev, OutboxRecordKind kind, Func<CoreEvent, CancellationToken, Task> write, CancellationToken ct)
    {
        var box = outbox();
        if (box is null || apiServer.IsReachable)
        {
            try
            {
                await write(ev, ct).ConfigureAwait(false);
                return;
            }
            catch (KubeUnavailableException) when (box is not null)
            {
                // fall through: keep it for later
            }
        }
        try
        {
            box!.Append([new OutboxRecord(kind, JsonSerializer.Serialize(ev, Resources.CoreEvents.Json))]);
        }
        catch (OutboxFullException e)
        {
            status?.ReportRefused($"event {ev.Reason} on {ev.InvolvedObject.Name}", e);
            throw;
        }
        status?.Refresh();
    }
}
