namespace Crsc.Controllers.Leadership;

/// <summary>
/// Where and when a node's standby instance of a leader-only reconciler acts in the leader's place: only for the pods of
/// <paramref name="NodeName"/>, and only while <paramref name="Active"/> says so (the leader is absent and this process
/// does not lead). While it is not active the instance reads its caches and writes nothing.
/// </summary>
public sealed record NodeStandbyScope(string NodeName, Func<bool> Active);
