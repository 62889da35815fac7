using System.Reflection;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>
/// Whether the real-component tests (CRIU, containerd, registry in tests/sandbox) can and should
/// run here, and where the sandbox scripts are.
/// <list type="bullet">
/// <item><c>CI=true</c>: they always run (CI is root); a missing precondition fails them loudly.</item>
/// <item><c>CRSC_E2E=0</c>: skipped, with that reason.</item>
/// <item>not root: skipped, with that reason (the sandbox mounts, pivots and runs containerd).</item>
/// </list>
/// </summary>
public static class RealComponents
{
    public const string Category = "Category";
    public const string Trait = "RealComponents";

    public static bool InCI => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool IsRoot => Environment.UserName == "root" || GetEuid() == 0;

    /// <summary>Null when the tests must run; otherwise why they are skipped.</summary>
    public static string? SkipReason { get; } = ComputeSkipReason();

    private static string? ComputeSkipReason()
    {
        if (InCI) return null;
        if (Environment.GetEnvironmentVariable("CRSC_E2E") == "0")
            return "real-component tests disabled by CRSC_E2E=0";
        if (!IsRoot)
            return "real-component tests need root (they build and enter a mount namespace and run containerd); run `sudo make e2e`, or set CRSC_E2E=0 to silence this";
        return null;
    }

    /// <summary>
    /// tests/sandbox of this checkout: <c>CRSC_SANDBOX_SCRIPTS</c>, else the repository this
    /// assembly was built from (recorded at build time by the csproj).
    /// </summary>
    public static string ScriptsDirectory
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("CRSC_SANDBOX_SCRIPTS");
            if (!string.IsNullOrEmpty(fromEnv)) return Path.GetFullPath(fromEnv);
            var root = typeof(RealComponents).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "CrscRepositoryRoot")?.Value
                ?? throw new InvalidOperationException("the build did not record CrscRepositoryRoot; set CRSC_SANDBOX_SCRIPTS");
            return Path.GetFullPath(Path.Combine(root, "tests", "sandbox"));
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuid();
}

/// <summary>
/// A fact that needs the real components: reported as skipped, with the reason, where they
/// cannot run (see <see cref="RealComponents.SkipReason"/>); never skipped in CI.
/// Mark the class with <c>[Trait("Category", "RealComponents")]</c> too.
/// </summary>
public sealed class RealComponentsFactAttribute : FactAttribute
{
    public RealComponentsFactAttribute()
    {
        if (RealComponents.SkipReason is { } reason) Skip = reason;
    }
}
