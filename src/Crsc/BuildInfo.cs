using System.Reflection;
using System.Runtime.CompilerServices;

namespace Crsc;

/// <summary>Version, git commit and build flavour of this binary.</summary>
public static class BuildInfo
{
    private static readonly string Informational =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>The semantic version, without build metadata.</summary>
    public static string Version => Informational.Split('+')[0];

    /// <summary>The git commit the binary was built from (short), or "unknown".</summary>
    public static string Commit => Informational.Split('+') is [_, var meta, ..] && meta.Length > 0 ? meta : "unknown";

    /// <summary><c>aot</c> for the Native AOT binary, <c>jit</c> otherwise.</summary>
    public static string Flavour => RuntimeFeature.IsDynamicCodeSupported ? "jit" : "aot";

    public static string Framework => System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;
}
