using System.Globalization;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Workloads;

/// <summary>The ways the pod reconciler sees a container fail.</summary>
public enum FailureSignal
{
    /// <summary>Terminated with a non-zero exit code (now, or the last time: <c>lastState</c>).</summary>
    ExitedWithError,
    /// <summary>The restart count grew since it was last seen.</summary>
    Restarted,
    /// <summary>Waiting with reason <c>CrashLoopBackOff</c>.</summary>
    CrashLoopBackOff,
    /// <summary>Running with a liveness probe, but not ready for longer than the threshold.</summary>
    LivenessFailing,
}

/// <summary>
/// One failure of one container of one pod. <see cref="At"/> is when it happened, as the pod's status says where it
/// says so (the termination's <c>finishedAt</c>), so every reconciler, on any leader, dates the same failure alike.
/// <see cref="Ongoing"/>: the pod still shows it (CrashLoopBackOff, not ready, terminated), as opposed to a failure
/// that is over (the container exited and runs again).
/// </summary>
public sealed record ContainerFailure(
    string Pod,
    string PodUid,
    string Container,
    FailureSignal Signal,
    DateTimeOffset At,
    bool Ongoing,
    string Description);

/// <summary>Reads failures from a pod's status. Pure: the caller keeps whatever it must remember (restart counts).</summary>
public static class ContainerFailures
{
    public const string CrashLoopBackOff = "CrashLoopBackOff";

    /// <summary>
    /// The failure <paramref name="status"/> shows by itself (signals a, c and d), or null. When the container runs
    /// not ready and the threshold has not passed yet, <paramref name="recheckAt"/> says when it will.
    /// </summary>
    /// <param name="firstSeen">when this reconciler first saw the state, for the rare failure the status does not date</param>
    public static ContainerFailure? FromStatus(Pod pod, Container? spec, ContainerStatus status, DateTimeOffset now,
        TimeSpan livenessThreshold, DateTimeOffset firstSeen, out DateTimeOffset? recheckAt)
    {
        recheckAt = null;
        var name = pod.Metadata.Name ?? "";
        var uid = pod.Metadata.Uid ?? "";
        ContainerFailure Failure(FailureSignal signal, DateTimeOffset at, bool ongoing, string description) =>
            new(name, uid, status.Name, signal, at, ongoing, description);

        if (status.State?.Terminated is { ExitCode: not 0 } now0)
            return Failure(FailureSignal.ExitedWithError, now0.FinishedAt ?? firstSeen, true,
                $"container {status.Name} of pod {name} terminated with exit code {Exit(now0)}");

        var last = status.LastState?.Terminated;
        if (status.State?.Waiting is { Reason: CrashLoopBackOff } waiting)
            return Failure(FailureSignal.CrashLoopBackOff, last?.FinishedAt ?? firstSeen, true,
                $"container {status.Name} of pod {name} is in CrashLoopBackOff (restarted {status.RestartCount} times" +
                (last is null ? ")" : $", last exit code {Exit(last)})") +
                (string.IsNullOrEmpty(waiting.Message) ? "" : ": " + waiting.Message));

        if (last is { ExitCode: not 0 })
            return Failure(FailureSignal.ExitedWithError, last.FinishedAt ?? firstSeen, false,
                $"container {status.Name} of pod {name} exited with code {Exit(last)} and was restarted (restart count {status.RestartCount})");

        if (status.State?.Running is { } running && !status.Ready && status.Started != false
            && spec?.LivenessProbe is { } probe && probe.ValueKind == System.Text.Json.JsonValueKind.Object)
        {
            var since = NotReadySince(pod, running, firstSeen);
            var at = since + livenessThreshold;
            if (at > now)
            {
                recheckAt = at;
                return null;
            }
            return Failure(FailureSignal.LivenessFailing, at, true,
                $"container {status.Name} of pod {name} has a liveness probe and has not been ready for {Seconds(now - since)} " +
                $"(more than {Seconds(livenessThreshold)})");
        }
        return null;
    }

    /// <summary>A restart the restart count shows (signal b), dated by the termination it followed when the status has it.</summary>
    public static ContainerFailure Restart(Pod pod, ContainerStatus status, int previousCount, DateTimeOffset firstSeen)
    {
        var name = pod.Metadata.Name ?? "";
        var last = status.LastState?.Terminated;
        return new ContainerFailure(name, pod.Metadata.Uid ?? "", status.Name, FailureSignal.Restarted,
            last?.FinishedAt ?? firstSeen, false,
            $"container {status.Name} of pod {name} restarted (restart count {previousCount} → {status.RestartCount}" +
            (last is null ? ")" : $", exit code {Exit(last)})"));
    }

    /// <summary>
    /// Since when the running container has been not ready: its start, or the pod's <c>ContainersReady=False</c>
    /// transition when that is later (it was ready for a while, then stopped being ready).
    /// </summary>
    private static DateTimeOffset NotReadySince(Pod pod, ContainerStateRunning running, DateTimeOffset firstSeen)
    {
        DateTimeOffset? since = running.StartedAt;
        var cond = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "ContainersReady")
            ?? pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        if (cond is { Status: "False", LastTransitionTime: { } t } && (since is null || t > since)) since = t;
        return since ?? firstSeen;
    }

    private static string Exit(ContainerStateTerminated t) =>
        t.ExitCode.ToString(CultureInfo.InvariantCulture) + (string.IsNullOrEmpty(t.Reason) ? "" : $" ({t.Reason})");

    private static string Seconds(TimeSpan d) => ((long)Math.Max(0, d.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s";
}
