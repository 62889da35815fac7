namespace Crsc.Testing.Cri;

/// <summary>
/// What real runtimes answer to the capability probe's questions, in their shapes, with where each shape came from.
/// </summary>
public static class RuntimeAnswers
{
    /// <summary>
    /// containerd's CRI Status verbose <c>info["config"]</c>: <c>json.Marshal(c.config)</c> of its CRI
    /// <c>Config</c>, which embeds <c>RuntimeConfig</c> so its fields sit at the top level (containerd
    /// internal/cri/server/status.go and internal/cri/config/config.go). JSON names of the checkpoint options:
    /// <c>enableCRIU</c> (internal/cri/config/enable_criu_linux_test.go, containerd PRs 13795/13734) and
    /// <c>enableExperimentalRestoreViaCreate</c> (same file, PRs 13913/13937). A field left null is omitted here, as a
    /// containerd without that option (before 2.2.7/2.3.4) has no such field.
    /// </summary>
    public static string ContainerdConfigJson(bool? restoreViaCreate = null, bool? enableCriu = null, bool? enableCheckpointRestore = null)
    {
        var extra = "";
        if (enableCriu is { } criu) extra += $",\"enableCRIU\":{(criu ? "true" : "false")}";
        if (enableCheckpointRestore is { } cr) extra += $",\"enableCheckpointRestore\":{(cr ? "true" : "false")}";
        if (restoreViaCreate is { } r) extra += $",\"enableExperimentalRestoreViaCreate\":{(r ? "true" : "false")}";
        return "{\"containerd\":{\"defaultRuntimeName\":\"runc\",\"runtimes\":{\"runc\":{\"runtimeType\":\"io.containerd.runc.v2\"," +
               "\"runtimePath\":\"\",\"PodAnnotations\":null,\"ContainerAnnotations\":null,\"options\":{\"SystemdCgroup\":true}," +
               "\"privileged_without_host_devices\":false,\"baseRuntimeSpec\":\"\",\"cniConfDir\":\"\",\"cniMaxConfNum\":0," +
               "\"snapshotter\":\"\",\"sandboxer\":\"podsandbox\",\"io_type\":\"\"}},\"ignoreBlockIONotEnabledErrors\":false," +
               "\"ignoreRdtNotEnabledErrors\":false},\"cni\":{\"binDir\":\"\",\"binDirs\":[\"/opt/cni/bin\"],\"confDir\":\"/etc/cni/net.d\"," +
               "\"maxConfNum\":1,\"setupSerially\":false,\"confTemplate\":\"\",\"ipPref\":\"\",\"useInternalLoopback\":false}," +
               "\"enableSelinux\":false,\"selinuxCategoryRange\":1024,\"maxContainerLogSize\":16384,\"disableApparmor\":false," +
               "\"restrictOOMScoreAdj\":false,\"disableProcMount\":false,\"unsetSeccompProfile\":\"\",\"tolerateMissingHugetlbController\":true," +
               "\"disableHugetlbController\":true,\"device_ownership_from_security_context\":false,\"ignoreImageDefinedVolumes\":false," +
               "\"netnsMountsUnderStateDir\":false,\"enableUnprivilegedPorts\":true,\"enableUnprivilegedICMP\":true,\"enableCDI\":true," +
               "\"cdiSpecDirs\":[\"/etc/cdi\",\"/var/run/cdi\"],\"drainExecSyncIOTimeout\":\"0s\",\"ignoreDeprecationWarnings\":null" +
               extra +
               ",\"containerdRootDir\":\"/var/lib/containerd\",\"containerdEndpoint\":\"/run/containerd/containerd.sock\"," +
               "\"rootDir\":\"/var/lib/containerd/io.containerd.grpc.v1.cri\",\"stateDir\":\"/run/containerd/io.containerd.grpc.v1.cri\"}";
    }

    /// <summary>
    /// CRI-O's configuration as <c>GET /config</c> (= <c>crio status config</c>) prints it: TOML, one table per section
    /// (cri-o server/inspect.go answers <c>s.config.ToBytes()</c> as <c>application/toml</c>). Table and key names:
    /// <c>[crio.checkpoint_restore] container_level_enabled</c> (cri-o PR 10248, docs/crio.conf.5.md; default
    /// "checkpoint_only" since PR 10251) and the deprecated <c>[crio.runtime] enable_criu_support</c>. A null argument
    /// leaves the key out (an older CRI-O has no checkpoint_restore table).
    /// </summary>
    public static string CrioConfigToml(string? level = "checkpoint_only", bool? enableCriuSupport = true) =>
        "# The CRI-O configuration file specifies all of the available configuration\n" +
        "[crio]\n" +
        "  root = \"/var/lib/containers/storage\"\n" +
        "  runroot = \"/run/containers/storage\"\n" +
        "  storage_driver = \"overlay\"\n" +
        "  log_dir = \"/var/log/crio/pods\"\n" +
        "  [crio.api]\n" +
        "    listen = \"/var/run/crio/crio.sock\"\n" +
        "    grpc_max_send_msg_size = 83886080\n" +
        "  [crio.runtime]\n" +
        "    default_runtime = \"crun\"\n" +
        "    # Enable CRIU integration, requires that the criu binary is available in $PATH.\n" +
        (enableCriuSupport is { } e ? $"    enable_criu_support = {(e ? "true" : "false")}\n" : "") +
        "    default_capabilities = [\n" +
        "      \"CHOWN\",\n" +
        "      \"SETUID\",\n" +
        "    ]\n" +
        "    [crio.runtime.runtimes]\n" +
        "      [crio.runtime.runtimes.crun]\n" +
        "        runtime_path = \"/usr/libexec/crio/crun\"\n" +
        "        runtime_type = \"oci\"\n" +
        "  [crio.image]\n" +
        "    pause_image = \"registry.k8s.io/pause:3.10\"\n" +
        (level is null ? "" : "  [crio.checkpoint_restore]\n" + $"    container_level_enabled = \"{level}\"\n") +
        "  [crio.metrics]\n" +
        "    enable_metrics = false\n";
}
