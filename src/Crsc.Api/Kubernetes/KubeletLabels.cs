namespace Crsc.Api.Kubernetes;

/// <summary>
/// The labels the kubelet puts on every sandbox and container it creates (CRI). CRI-O also writes them into the OCI
/// spec's annotations, so a checkpoint archive's <c>spec.dump</c> carries them (<see cref="Archives.SpecDumpAnnotations"/>).
/// </summary>
public static class KubeletLabels
{
    public const string PodName = "io.kubernetes.pod.name";
    public const string PodNamespace = "io.kubernetes.pod.namespace";
    public const string PodUid = "io.kubernetes.pod.uid";
    public const string ContainerName = "io.kubernetes.container.name";
}
