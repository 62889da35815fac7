using Crsc.Configuration;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// With <c>images.registry</c> set, checkpoint images are pushed there and the Content's image reference names the
/// registry — pullable from every node, where the embedded endpoint's reference is pullable only from nodes that
/// reach this one. Registered after <see cref="ImageEndpoint.Register"/>, so it replaces the embedded publisher (the
/// endpoint itself keeps serving the store).
/// </summary>
internal static class RegistryPublishing
{
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        if (options.ImagesRegistry.Length == 0) return;
        var location = RegistryLocation.Parse(options.ImagesRegistry); // validated at start: a bad value exits 78 before this
        services.AddSingleton(sp => new RegistryClient(new RegistryClientOptions
        {
            Registry = location.Host,
            Insecure = options.RegistryInsecure,
            Credentials = options.ImagesRegistryAuthFile.Length > 0 ? RegistryAuthFile.Load(options.ImagesRegistryAuthFile, location.Host) : null,
        }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<RegistryClient>>()));
        services.AddSingleton<ICheckpointImagePublisher>(sp => new RegistryPushPublisher(sp.GetRequiredService<ICheckpointStore>(),
            sp.GetRequiredService<RegistryClient>(), location, logger: sp.GetService<ILogger<RegistryPushPublisher>>()));
    }
}
