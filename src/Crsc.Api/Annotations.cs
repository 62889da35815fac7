namespace Crsc.Api;

/// <summary>The annotation names crsc reads and writes (DESIGN.md §2). Stable: users and tooling rely on them.</summary>
public static class Annotations
{
    public const string Prefix = "crsc.io/";
    public const string CheckpointRestore = "crsc.io/checkpoint-restore";
    public const string CheckpointInterval = "crsc.io/checkpoint-interval";
    public const string InterceptorSidecarAttached = "crsc.io/interceptor-sidecar-attached";
    public const string RestoreFrom = "crsc.io/restore-from";
    public const string StaticCheckpoint = "crsc.io/static-checkpoint";
    public const string CoreOsCheckpoint = "checkpointer.alpha.coreos.com/checkpoint";
    public const string CheckpointOf = "crsc.io/checkpoint-of";
}

/// <summary>API group and version of crsc's own resources.</summary>
public static class CrscApi
{
    public const string Group = "crsc.io";
    public const string Version = "v1alpha1";
    public const string GroupVersion = Group + "/" + Version;
}
