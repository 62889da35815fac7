namespace Crsc.Controllers.Health;

public enum HealthStatus
{
    /// <summary>Working as configured.</summary>
    Healthy,
    /// <summary>Working with less than configured (e.g. no API server: node agent only). Still ready.</summary>
    Degraded,
    /// <summary>Not working: /readyz fails and the systemd watchdog is no longer fed.</summary>
    Unhealthy,
}

public sealed record HealthEntry(string Component, HealthStatus Status, string Message, DateTimeOffset Since);

/// <summary>
/// What each part of the daemon says about itself. Feeds /healthz, /readyz, the systemd STATUS= line
/// and the watchdog. Thread-safe; <see cref="Changed"/> fires after every change of status or message.
/// </summary>
public sealed class HealthRegistry(TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, HealthEntry> _entries = new(StringComparer.Ordinal);

    public event Action? Changed;

    /// <summary>Records what <paramref name="component"/> says; keeps <c>Since</c> while the status is unchanged.</summary>
    public void Report(string component, HealthStatus status, string message)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(component, out var old))
            {
                if (old.Status == status && old.Message == message) return;
                _entries[component] = new HealthEntry(component, status, message,
                    old.Status == status ? old.Since : time.GetUtcNow());
            }
            else
            {
                _entries[component] = new HealthEntry(component, status, message, time.GetUtcNow());
            }
        }
        Changed?.Invoke();
    }

    public void Remove(string component)
    {
        bool removed;
        lock (_gate) removed = _entries.Remove(component);
        if (removed) Changed?.Invoke();
    }

    public IReadOnlyList<HealthEntry> Snapshot()
    {
        lock (_gate) return [.. _entries.Values];
    }

    /// <summary>The worst status reported; Healthy when nothing reported.</summary>
    public HealthStatus Overall
    {
        get
        {
            lock (_gate)
                return _entries.Count == 0 ? HealthStatus.Healthy : _entries.Values.Max(e => e.Status);
        }
    }

    /// <summary>One line for systemd's STATUS=: "degraded: kube: api-server unreachable; runtime: ok".</summary>
    public string Summary()
    {
        var entries = Snapshot();
        var overall = entries.Count == 0 ? HealthStatus.Healthy : entries.Max(e => e.Status);
        var word = overall switch
        {
            HealthStatus.Healthy => "running",
            HealthStatus.Degraded => "degraded",
            _ => "unhealthy",
        };
        return entries.Count == 0 ? word : word + ": " + string.Join("; ", entries.Select(e => $"{e.Component}: {e.Message}"));
    }
}
