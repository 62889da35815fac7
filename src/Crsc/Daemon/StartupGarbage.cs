namespace Crsc.Daemon;

/// <summary>
/// Gives back the one-off garbage of starting up. Under Native AOT, building the host (dependency injection,
/// options, Kestrel, generic virtual calls) makes the runtime's type loader construct ~1,000 types and method
/// dictionaries at run time: ~6 MB of scratch objects, of which ~2 MB stay live. The gen0 budget is larger than
/// that, so without a collection the scratch keeps its pages until the daemon has allocated a whole gen0 budget
/// again (tens of minutes for an idle node agent). One compacting collection once the daemon is READY returns
/// those pages to the node; it costs a few milliseconds, after READY=1.
/// Not a timer, not repeated: later garbage is the GC's business as usual.
/// </summary>
internal static class StartupGarbage
{
    public static void Collect() => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
}
