using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// The <c>schedules</c> health entry of a node: the schedules of this node's pods, and which of them are failing
/// (Ready=False, <see cref="ScheduleReconciler.ReasonCheckpointsFailing"/>), so that /readyz and systemd's STATUS= say
/// it where a person looks first, not only the CheckpointSchedule's conditions. Degraded while any is failing.
/// </summary>
public sealed class ScheduleHealth(Informer<CheckpointSchedule> schedules, Informer<Pod> podsOnNode, HealthRegistry health)
{
    public const string Component = "schedules";

    /// <summary>The first failing schedules named in the entry; the rest are counted.</summary>
    public const int Named = 3;

    /// <summary>What the entry says now (pure: from the two caches).</summary>
    public static (HealthStatus Status, string Message) Evaluate(Informer<CheckpointSchedule> schedules, Informer<Pod> podsOnNode)
    {
        var keys = new HashSet<ObjectKey>();
        foreach (var pod in podsOnNode.List())
            foreach (var key in ScheduleReconciler.SchedulesOfPod(schedules, pod)) keys.Add(key);
        var failing = keys.Select(schedules.Get).OfType<CheckpointSchedule>()
            .Select(s => (Schedule: s, Ready: s.Status?.FindCondition(ConditionTypes.Ready)))
            .Where(x => x.Ready is { Status: ConditionStatus.False, Reason: ScheduleReconciler.ReasonCheckpointsFailing })
            .OrderBy(x => x.Schedule.Metadata.Namespace, StringComparer.Ordinal).ThenBy(x => x.Schedule.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        if (failing.Count == 0) return (HealthStatus.Healthy, $"{keys.Count} on this node's pods, none failing");
        var named = string.Join("; ", failing.Take(Named).Select(x =>
            $"{x.Schedule.Metadata.Namespace}/{x.Schedule.Metadata.Name}: {Clip(x.Ready!.Message)}"));
        var more = failing.Count > Named ? $"; and {failing.Count - Named} more" : "";
        return (HealthStatus.Degraded, $"{failing.Count} of {keys.Count} failing: {named}{more}");
    }

    /// <summary>Reports the entry now and whenever a schedule or a pod of this node changes, until <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        void Report()
        {
            if (!schedules.HasSynced || !podsOnNode.HasSynced) return;
            var (status, message) = Evaluate(schedules, podsOnNode);
            health.Report(Component, status, message);
        }
        using var a = schedules.AddEventHandler(new ResourceEventHandler<CheckpointSchedule>(_ => Report(), (_, _) => Report(), _ => Report()));
        using var b = podsOnNode.AddEventHandler(new ResourceEventHandler<Pod>(_ => Report(), (_, _) => Report(), _ => Report()));
        try
        {
            await Task.WhenAll(schedules.WaitForSyncAsync(ct), podsOnNode.WaitForSyncAsync(ct)).ConfigureAwait(false);
            Report();
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            health.Remove(Component);
        }
    }

    private static string Clip(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 400 ? line : line[..399] + "…";
    }
}
