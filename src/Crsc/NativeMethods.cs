using System.Runtime.InteropServices;

namespace Crsc;

internal static partial class NativeMethods
{
    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    /// <summary>
    /// The daemon handles process memory (archives) and secrets: everything it creates is private to root
    /// unless it says otherwise (umask 077).
    /// </summary>
    public static void RestrictUmask() => Umask(0b000_111_111);
}
