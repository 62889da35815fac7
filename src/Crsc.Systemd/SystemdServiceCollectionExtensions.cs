using Crsc.Controllers.Health;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Crsc.Systemd;

public static class SystemdServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="SystemdNotifier"/> (from <c>NOTIFY_SOCKET</c>), <see cref="WatchdogSettings"/> (from
    /// <c>WATCHDOG_USEC</c>/<c>WATCHDOG_PID</c>), and the hosted <see cref="SystemdStatusReporter"/> and
    /// <see cref="WatchdogService"/>. Needs <see cref="HealthRegistry"/> and <see cref="TimeProvider"/> registered.
    /// All of it is inert when systemd did not start the process. Send READY=1 with
    /// <see cref="SystemdStatusReporter.NotifyReadyAsync"/> once the host has started.
    /// </summary>
    public static IServiceCollection AddSystemdIntegration(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(sp => SystemdNotifier.FromEnvironment(
            sp.GetService<ILogger<SystemdNotifier>>(), sp.GetService<TimeProvider>()));
        services.TryAddSingleton(_ => WatchdogSettings.FromEnvironment());
        services.TryAddSingleton(sp => new SystemdStatusReporter(
            sp.GetRequiredService<SystemdNotifier>(), sp.GetRequiredService<HealthRegistry>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SystemdStatusReporter>>()));
        services.AddHostedService(sp => sp.GetRequiredService<SystemdStatusReporter>());
        services.AddHostedService(sp => new WatchdogService(
            sp.GetRequiredService<SystemdNotifier>(), sp.GetRequiredService<HealthRegistry>(),
            sp.GetRequiredService<WatchdogSettings>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<WatchdogService>>()));
        return services;
    }
}
