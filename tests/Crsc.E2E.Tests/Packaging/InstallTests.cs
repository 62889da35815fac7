using System.Diagnostics;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Packaging;

/// <summary>The install tests boot root filesystems one at a time (they share the cached rootfs).</summary>
[CollectionDefinition(Name)]
public sealed class InstallCollection
{
    public const string Name = "Package install (bookworm rootfs)";
}

/// <summary>
/// The packages installed into a clean Debian bookworm root filesystem (tests/packaging/setup-rootfs.sh,
/// cached; each test works on a fresh copy) and booted with systemd-nspawn: files and modes, the
/// conffile, enabled but not started, systemd-analyze verify, `systemctl start crsc` → active (running)
/// with the daemon's STATUS=, its structured journal, then remove and purge. Every mount is made in a
/// private mount namespace (tests/packaging/rootfs.sh); the host's /etc and services are not touched.
/// </summary>
[Collection(InstallCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class InstallTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _work = Path.Combine("/var/tmp/crsc-install-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private string Rootfs => Path.Combine(_work, "rootfs");
    private int _init;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (!Directory.Exists(_work)) return;
        if (Environment.GetEnvironmentVariable("CRSC_E2E_KEEP") == "1") { output.WriteLine($"CRSC_E2E_KEEP=1: left {_work}"); return; }
        var r = await Script("remove", _work);
        if (!r.Succeeded) output.WriteLine($"WARNING: could not remove {_work}: {r}");
    }

    private Task<CommandResult> Script(params string[] args) =>
        CommandRunner.RunAsync("bash", [Path.Combine(Packages.ScriptsDirectory, "rootfs.sh"), .. args], timeout: TimeSpan.FromMinutes(3));

    private async Task<string> Step(string what, string script, params string[] args)
    {
        var sw = Stopwatch.StartNew();
        var r = await CommandRunner.RunAsync("bash", [Path.Combine(Packages.ScriptsDirectory, script), .. args], timeout: TimeSpan.FromMinutes(30));
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}: exit {r.ExitCode} in {sw.Elapsed.TotalSeconds:0.0} s");
        Assert.True(r.Succeeded, $"{what} failed: {r}");
        return r.Stdout;
    }

    /// <summary>A command chrooted into the (not booted) rootfs.</summary>
    private Task<CommandResult> InRoot(params string[] argv) => Script(["chroot", _work, .. argv]);

    /// <summary>A command in the booted container.</summary>
    private Task<CommandResult> InBooted(params string[] argv) => Script(["enter", _init.ToString(System.Globalization.CultureInfo.InvariantCulture), .. argv]);

    private static async Task<string> Ok(Task<CommandResult> run, string what)
    {
        var r = await run;
        Assert.True(r.Succeeded, $"{what}: {r}");
        return r.Stdout;
    }

    private async Task FreshRootfsAsync()
    {
        await Step("cached bookworm rootfs (setup-rootfs.sh)", "setup-rootfs.sh");
        await Step("fresh copy", "rootfs.sh", "fresh", _work);
    }

    private async Task BootAsync()
    {
        _init = int.Parse((await Step("boot with systemd-nspawn -b", "rootfs.sh", "boot", _work)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>stat of a path in the rootfs, from the host: "0755 root root".</summary>
    private string Stat(string path)
    {
        var full = Rootfs + path;
        Assert.True(File.Exists(full) || Directory.Exists(full), $"{path} does not exist in the rootfs");
        var mode = Convert.ToString((int)File.GetUnixFileMode(full), 8).PadLeft(4, '0');
        var owner = Ok(Packages.RunAsync("stat", "-c", "%U %G", full), "stat").Result.Trim();
        return $"{mode} {owner}";
    }

    private void AssertInstalledFiles()
    {
        foreach (var p in Packages.Contents())
            Assert.Equal($"{p.Mode} root root", Stat(p.Destination));
        Assert.Equal(File.ReadAllBytes(Path.Combine(Packages.RepositoryRoot, "systemd", "crsc.service")), File.ReadAllBytes(Rootfs + "/lib/systemd/system/crsc.service"));
    }

    private async Task AssertEnabledNotStartedAsync(Func<string[], Task<CommandResult>> run)
    {
        Assert.Equal("/lib/systemd/system/crsc.service", new FileInfo(Rootfs + "/etc/systemd/system/multi-user.target.wants/crsc.service").LinkTarget);
        Assert.Equal("enabled", (await run(["systemctl", "is-enabled", "crsc.service"])).Stdout.Trim());
        Assert.False(Directory.Exists(Rootfs + "/var/lib/crsc"), "the package must not start crsc (or create its state) on install");
    }

    private async Task AssertUnitVerifiesAsync()
    {
        var verify = await InRoot("systemd-analyze", "verify", "/lib/systemd/system/crsc.service");
        Assert.True(verify.Succeeded && verify.Output.Trim().Length == 0, $"systemd-analyze verify is not clean: {verify}");
        // and it does complain about a unit with a mistake (so a clean result means something)
        File.WriteAllText(Rootfs + "/etc/systemd/system/crsc-broken.service", "[Service]\nType=notify\nExecStart=/usr/bin/crsc daemon\nProtectSystem=very\n");
        var broken = await InRoot("systemd-analyze", "verify", "/etc/systemd/system/crsc-broken.service");
        Assert.Contains("crsc-broken.service:4", broken.Output);
        File.Delete(Rootfs + "/etc/systemd/system/crsc-broken.service");
    }

    /// <summary>In the booted container: start crsc, see it running with its STATUS= line and its structured journal.</summary>
    private async Task AssertStartsAndReportsAsync()
    {
        // enabled: it came up with the boot; stop it and start it by hand the way an admin would
        await Ok(InBooted("systemctl", "stop", "crsc.service"), "systemctl stop crsc");
        Assert.Equal("inactive", (await InBooted("systemctl", "is-active", "crsc.service")).Stdout.Trim());
        var sw = Stopwatch.StartNew();
        await Ok(InBooted("systemctl", "start", "crsc.service"), "systemctl start crsc"); // Type=notify: returns after READY=1
        output.WriteLine($"systemctl start crsc returned after {sw.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal("active", (await InBooted("systemctl", "is-active", "crsc.service")).Stdout.Trim());
        // READY=1 comes once the host has started; the runtime probe answers on its own time and the STATUS= line
        // follows it (coalesced), so the line that names both is waited for, not expected at the first look
        var statusText = "";
        await Eventually.TrueAsync(async () =>
        {
            statusText = (await InBooted("systemctl", "show", "-p", "StatusText", "--value", "crsc.service")).Stdout;
            return statusText.Contains("runtime: unreachable", StringComparison.Ordinal);
        }, "crsc's STATUS= names the unreachable runtime", TimeSpan.FromSeconds(30));
        Assert.Contains("node-agent: node crsc-install-test", statusText);
        var status = await InBooted("systemctl", "status", "--no-pager", "-l", "crsc.service");
        output.WriteLine(status.Stdout);
        Assert.Contains("Active: active (running)", status.Stdout);
        // the daemon's STATUS= (no API server and no CRI socket here: it runs degraded, as a node agent)
        Assert.Matches(@"Status: ""degraded: .*kube: no API server configured.*runtime: unreachable", status.Stdout);
        Assert.Equal("30s", (await InBooted("systemctl", "show", "-p", "WatchdogUSec", "--value", "crsc.service")).Stdout.Trim());

        var journal = await Ok(InBooted("journalctl", "-u", "crsc.service", "-o", "verbose", "--no-pager"), "journalctl -u crsc");
        Assert.Contains("SYSLOG_IDENTIFIER=crsc", journal);
        Assert.Contains("_SYSTEMD_UNIT=crsc.service", journal);
        Assert.Contains("EVENT_NAME=StoreOpened", journal);                 // crsc's own structured fields
        Assert.Contains("CHECKPOINT_DIRECTORY=/var/lib/crsc/checkpoints", journal);
        Assert.Contains("LOGGER=Crsc.Storage.DiskCheckpointStore", journal);

        // the directories the unit gives it, root only
        Assert.Equal("0700 root root", Stat("/var/lib/crsc"));
        var socket = await Ok(InBooted("stat", "-c", "%a %U %F", "/run/crsc/crsc.sock"), "stat the node API socket");
        Assert.Equal("600 root socket", socket.Trim());
        var preflight = await InBooted("crsc", "preflight");
        output.WriteLine(preflight.Stdout);
        Assert.Matches(@"runtime socket\s+FAIL\s+/var/run/crio/crio.sock does not exist", preflight.Stdout);
        Assert.Equal(1, preflight.ExitCode);
    }

    [RealComponentsFact]
    public async Task Deb_installs_into_clean_bookworm_boots_runs_and_is_removed_then_purged()
    {
        await FreshRootfsAsync();
        Directory.CreateDirectory(Rootfs + "/root/packages");
        File.Copy(Packages.Deb, Rootfs + "/root/packages/crsc.deb");

        var install = await InRoot("dpkg", "-i", "/root/packages/crsc.deb");
        output.WriteLine(install.ToString());
        Assert.True(install.Succeeded, $"dpkg -i: {install}");
        Assert.Contains("crsc installed: configure /etc/crsc/config.yaml", install.Stdout);
        Assert.Equal("install ok installed " + Packages.Version,
            (await Ok(InRoot("dpkg-query", "-W", "-f", "${Status} ${Version}", "crsc"), "dpkg-query")).Trim());
        AssertInstalledFiles();
        Assert.Contains("/etc/crsc/config.yaml", await Ok(InRoot("dpkg-query", "-W", "-f", "${Conffiles}", "crsc"), "conffiles"));
        await AssertEnabledNotStartedAsync(argv => InRoot(argv));
        await AssertUnitVerifiesAsync();

        // an admin's change to the config file survives reinstalling (upgrading) the package
        File.AppendAllText(Rootfs + "/etc/crsc/config.yaml", "log:\n  level: debug\n");
        await Ok(InRoot("dpkg", "-i", "/root/packages/crsc.deb"), "dpkg -i again");
        Assert.EndsWith("log:\n  level: debug\n", File.ReadAllText(Rootfs + "/etc/crsc/config.yaml"));

        await BootAsync();
        await AssertStartsAndReportsAsync();

        // an upgrade (the same package again) restarts the running daemon on the new files and keeps it enabled
        var pid = (await InBooted("systemctl", "show", "-p", "MainPID", "--value", "crsc.service")).Stdout.Trim();
        await Ok(InBooted("dpkg", "-i", "/root/packages/crsc.deb"), "dpkg -i while running");
        Assert.Equal("active", (await InBooted("systemctl", "is-active", "crsc.service")).Stdout.Trim());
        Assert.Equal("enabled", (await InBooted("systemctl", "is-enabled", "crsc.service")).Stdout.Trim());
        var newPid = (await InBooted("systemctl", "show", "-p", "MainPID", "--value", "crsc.service")).Stdout.Trim();
        Assert.True(newPid != pid && newPid != "0", $"the upgrade did not restart crsc (MainPID {pid} → {newPid})");

        // remove: stopped and disabled, the program gone, the store and the configuration kept
        File.WriteAllText(Rootfs + "/var/lib/crsc/keep-me", "state");
        var remove = await InBooted("dpkg", "-r", "crsc");
        Assert.True(remove.Succeeded, $"dpkg -r: {remove}");
        Assert.Equal("inactive", (await InBooted("systemctl", "is-active", "crsc.service")).Stdout.Trim());
        Assert.False(File.Exists(Rootfs + "/usr/bin/crsc"));
        Assert.False(File.Exists(Rootfs + "/lib/systemd/system/crsc.service"));
        Assert.False(File.Exists(Rootfs + "/etc/systemd/system/multi-user.target.wants/crsc.service"), "removal must disable the unit");
        Assert.True(File.Exists(Rootfs + "/var/lib/crsc/keep-me"), "removal must keep /var/lib/crsc");
        Assert.True(File.Exists(Rootfs + "/etc/crsc/config.yaml"), "removal keeps the conffile");

        // purge: the store, the state and the configuration go
        await Ok(InBooted("dpkg", "-P", "crsc"), "dpkg -P");
        Assert.False(Directory.Exists(Rootfs + "/var/lib/crsc"), "purge must remove /var/lib/crsc");
        Assert.False(Directory.Exists(Rootfs + "/etc/crsc"), "purge must remove /etc/crsc");
        Assert.False((await InBooted("dpkg-query", "-W", "crsc")).Succeeded);
        output.WriteLine($"deb install test: {_clock.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>
    /// Issue 18, logind for real: the installed daemon in a booted Debian holds a delay inhibitor for shutdown (logind
    /// lists it), and on <c>systemctl poweroff</c> — which asks logind, which announces PrepareForShutdown(true) — it
    /// checkpoints the node's managed containers into its store and releases the inhibitor before systemd stops it.
    /// The cluster and the runtime are the test's, on the host: a <see cref="FakeApiServer"/> (the Node, its pods, two
    /// CheckpointSchedules whose next run is a day away) that the daemon reaches at its own 127.0.0.1 through a
    /// <see cref="LoopbackRelay"/> into the container's network namespace, and a <see cref="FakeCriServer"/> whose socket
    /// is a file of the root filesystem, running five containers (three managed, two not) whose dumps take 300 ms and
    /// whose archives it writes where the daemon asks, seen from the host (<see cref="FakeCriServer.FilesystemRoot"/>).
    /// Read afterwards: the store with the package's own <c>crsc list</c> (chrooted), the runtime's calls, and the
    /// container's persistent journal.
    /// </summary>
    [RealComponentsFact]
    public async Task Deb_daemon_holds_a_logind_delay_inhibitor_and_checkpoints_the_managed_containers_before_poweroff_stops_it()
    {
        await FreshRootfsAsync();
        Directory.CreateDirectory(Rootfs + "/root/packages");
        File.Copy(Packages.Deb, Rootfs + "/root/packages/crsc.deb");
        await Ok(InRoot("dpkg", "-i", "/root/packages/crsc.deb"), "dpkg -i");

        // the runtime: its socket a file of the root filesystem (a Unix socket by path crosses the network namespace);
        // /run is the container's own tmpfs, so not there
        Directory.CreateDirectory(Rootfs + "/var/lib/fake-cri");
        await using var cri = await FakeCriServer.StartAsync(Rootfs + "/var/lib/fake-cri/cri.sock");
        cri.FilesystemRoot = Rootfs;
        cri.Inject("CheckpointContainer", CriFault.Delayed(TimeSpan.FromMilliseconds(300)));
        var pods = new[]
        {
            new ShutdownPod("web-6c5d8-h2x7q", "web", "6c5d8", ["app"]),
            new ShutdownPod("web-6c5d8-m4k9z", "web", "6c5d8", ["app"]),
            new ShutdownPod("api-7f9b2-qq8wd", "api", "7f9b2", ["api", "log-shipper"]),
            new ShutdownPod("batch-5d4c3-x1p0r", "batch", "5d4c3", ["worker"]),
        };
        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pod in pods)
            foreach (var c in pod.Containers)
                ids[$"{ShutdownNs}/{pod.Name}/{c}"] = cri.AddRunningContainer(ShutdownNs, pod.Name, c, podUid: pod.Uid).ContainerId;
        // web: every container; api: only "api" (not its log shipper); batch: no schedule
        string[] managed = [$"{ShutdownNs}/api-7f9b2-qq8wd/api", $"{ShutdownNs}/web-6c5d8-h2x7q/app", $"{ShutdownNs}/web-6c5d8-m4k9z/app"];

        await using var api = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            Resources = [FakeResource.From(CrscResources.ContainerCheckpoints, true), FakeResource.From(CrscResources.ContainerCheckpointContents, true),
                FakeResource.From(CrscResources.CheckpointSchedules, true), FakeResource.From(CrscResources.Restores, true)],
        });
        api.Seed(Resources.Nodes, new Node { Metadata = new ObjectMeta { Name = ShutdownNode } });
        foreach (var pod in pods) api.Seed(Resources.Pods, pod.ToPod());
        api.Seed(CrscResources.CheckpointSchedules, ShutdownSchedule("web", null));
        api.Seed(CrscResources.CheckpointSchedules, ShutdownSchedule("api", ["api"]));
        File.WriteAllText(Rootfs + "/etc/crsc/kubeconfig", api.KubeconfigYaml());
        File.SetUnixFileMode(Rootfs + "/etc/crsc/kubeconfig", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.AppendAllText(Rootfs + "/etc/crsc/config.yaml",
            $"nodeName: {ShutdownNode}\nkubeconfig: /etc/crsc/kubeconfig\nruntime:\n  endpoint: unix:///var/lib/fake-cri/cri.sock\n");

        await BootAsync();
        // the daemon came up with the boot, before the API server could be reached: it reconnects on its own
        await using var relay = LoopbackRelay.Open(_init, api.Url.Port, api.Url.Port);
        var stateFile = Rootfs + "/var/lib/crsc/state/node/state.json";
        await Eventually.TrueAsync(() => File.Exists(stateFile) && pods.All(p => File.ReadAllText(stateFile).Contains(p.Name, StringComparison.Ordinal)
                == (p.Workload != "batch")),
            "the daemon's node state names the scheduled pods", TimeSpan.FromSeconds(60));

        var list = "";
        await Eventually.TrueAsync(async () =>
        {
            list = (await InBooted("systemd-inhibit", "--list", "--no-pager")).Stdout;
            return list.Contains("crsc", StringComparison.Ordinal);
        }, "logind lists crsc's inhibitor", TimeSpan.FromSeconds(60));
        output.WriteLine(list);
        Assert.Matches(@"(?m)^\s*crsc\s.*\bshutdown\b.*\bdelay\s*$", list);
        Assert.Empty(cri.CallsTo("CheckpointContainer")); // the schedules' first runs are a day away

        var nspawn = int.Parse(File.ReadAllText(Path.Combine(_work, "nspawn.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var sw = Stopwatch.StartNew();
        var poweroff = await InBooted("systemctl", "poweroff");
        output.WriteLine($"systemctl poweroff: {poweroff}");
        await Eventually.TrueAsync(() => !Directory.Exists($"/proc/{nspawn}"), "the container powers off", TimeSpan.FromSeconds(90));
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s] powered off {sw.Elapsed.TotalSeconds:0.0} s after systemctl poweroff; " +
                         $"{relay.Connections} connection(s) relayed to the API server");

        // the runtime was asked for exactly the managed containers, once each, into the daemon's staging area
        var calls = cri.CallsTo("CheckpointContainer").Select(c => (Runtime.V1.CheckpointContainerRequest)c.Request!).ToList();
        foreach (var c in calls) output.WriteLine($"CheckpointContainer {ids.Single(kv => kv.Value == c.ContainerId).Key} -> {c.Location}");
        Assert.Equal(managed.Select(m => ids[m]).Order(StringComparer.Ordinal), calls.Select(c => c.ContainerId).Order(StringComparer.Ordinal));
        Assert.All(calls, c => Assert.StartsWith("/var/lib/crsc/staging/", c.Location, StringComparison.Ordinal));

        // the store, as crsc list reads it on the node after the reboot: one checkpoint per managed container,
        // reason NodeShutdown, its MAC verified with the node key
        var listed = await Ok(InRoot("crsc", "list", "--json"), "crsc list --json in the powered-off root");
        output.WriteLine(listed);
        using var json = System.Text.Json.JsonDocument.Parse(listed);
        var stored = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(managed, stored.Select(e => $"{e.GetProperty("namespace").GetString()}/{e.GetProperty("podName").GetString()}/{e.GetProperty("container").GetString()}")
            .Order(StringComparer.Ordinal));
        foreach (var e in stored)
        {
            Assert.Equal("NodeShutdown", e.GetProperty("reason").GetString());
            Assert.Equal(ShutdownNode, e.GetProperty("nodeName").GetString());
            Assert.Equal("verified", e.GetProperty("authenticity").GetString());
            var pod = pods.Single(p => p.Name == e.GetProperty("podName").GetString());
            Assert.Equal(pod.Uid, e.GetProperty("podUid").GetString());
            Assert.Equal(pod.Workload, e.GetProperty("workload").GetString());
            Assert.True(File.Exists(Rootfs + e.GetProperty("archivePath").GetString()), $"no archive at {e.GetProperty("archivePath").GetString()}");
        }
        Assert.Empty(Directory.GetFileSystemEntries(Rootfs + "/var/lib/crsc/staging"));

        var journal = await Ok(Packages.RunAsync("journalctl", "-D", Rootfs + "/var/log/journal", "-o", "cat", "--no-pager",
            "SYSLOG_IDENTIFIER=crsc", "+", "_PID=1"), "journalctl of the powered-off container");
        // crsc's lines render string values quoted ("NodeShutdown"): the patterns take them either way
        int At(string pattern, int from = 0)
        {
            var m = new System.Text.RegularExpressions.Regex(pattern).Match(journal, from);
            Assert.True(m.Success, $"/{pattern}/ is not in the container's journal:\n{journal[Math.Max(0, journal.Length - 6000)..]}");
            return m.Index;
        }
        static string Q(string value) => "\"?" + System.Text.RegularExpressions.Regex.Escape(value) + "\"?";
        var holding = At("Holding a logind delay inhibitor for shutdown");
        var announced = At("logind announced a shutdown");
        var released = At("logind delay inhibitor released", announced);
        Assert.True(holding < announced && announced < released, "the inhibitor was held, then the shutdown announced, then it was released");
        // every checkpoint recorded (committed to the store) after the announcement, then the run's end, then the release
        var done = At($@"Node going away \({Q("NodeShutdown")}\): 3 of 3 checkpoint\(s\) stored, 0 failed", announced);
        foreach (var e in stored)
        {
            var name = $"{e.GetProperty("namespace").GetString()}/{e.GetProperty("podName").GetString()}/{e.GetProperty("container").GetString()}";
            var line = At($@"Node going away \({Q("NodeShutdown")}\): {Q(name)} checkpointed as {Q(e.GetProperty("id").GetString()!)}", announced);
            Assert.True(line < done, $"{name}'s checkpoint was recorded after the run's end:\n{journal[announced..]}");
        }
        Assert.True(done < released, $"the inhibitor was released before the checkpoints were recorded:\n{journal[announced..]}");
        // systemd stops crsc only once the inhibitor is released. The run's end is logged just before the release (crsc
        // closes the inhibitor's fd right after, and logind goes on at once), on the same journal socket as systemd's
        // lines: it must come before "Stopping crsc.service". The "released" line is logged after the close, so it may
        // follow systemd's line by a few milliseconds: its place says nothing.
        var stopping = At("Stopping crsc.service", announced);
        Assert.True(done < stopping, $"systemd stopped crsc before it released its inhibitor:\n{journal[announced..]}");
        // and every hole of crsc's messages was filled ("of {Namespace}/web/app" was printed as is once)
        Assert.DoesNotMatch(@"\{[A-Z][A-Za-z]*(:[^}]*)?\}", journal);
        output.WriteLine(string.Join('\n', journal[announced..].Split('\n').Where(l => l.Contains("NodeShutdown", StringComparison.Ordinal)
            || l.Contains("logind", StringComparison.Ordinal) || l.Contains("crsc.service", StringComparison.Ordinal))));
        // not asserted: the outbox may or may not have published them before the daemon stopped
        output.WriteLine($"ContainerCheckpoints on the API server after the poweroff: {api.All(api.ResourceOf(CrscResources.ContainerCheckpoints)).Count()}");
        output.WriteLine($"poweroff test: {_clock.Elapsed.TotalSeconds:0.0} s");
    }

    private const string ShutdownNode = "crsc-install-test";
    private const string ShutdownNs = "shop";

    /// <summary>A running pod of a Deployment on the install test's node, as the API server has it.</summary>
    private sealed record ShutdownPod(string Name, string Workload, string Hash, string[] Containers)
    {
        public string Uid { get; } = Guid.NewGuid().ToString();

        public Pod ToPod() => new()
        {
            Metadata = new ObjectMeta
            {
                Name = Name, Namespace = ShutdownNs, Uid = Uid, Labels = new() { ["pod-template-hash"] = Hash },
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{Workload}-{Hash}", Uid = $"rs-{Workload}", Controller = true }],
            },
            Spec = new PodSpec { NodeName = ShutdownNode, Containers = [.. Containers.Select(c => new Container { Name = c, Image = "registry.local/busybox:1" })] },
            Status = new PodStatus { Phase = "Running" },
        };
    }

    /// <summary>A schedule of a Deployment whose first run is a day after it was created: none runs during the test.</summary>
    private static CheckpointSchedule ShutdownSchedule(string deployment, List<string>? containers) => new()
    {
        Metadata = new ObjectMeta { Name = deployment, Namespace = ShutdownNs },
        Spec = new CheckpointScheduleSpec
        {
            Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = deployment },
            Containers = containers,
            Interval = "24h",
            Retention = new RetentionPolicy { KeepLast = 5 },
        },
    };

    [RealComponentsFact]
    public async Task Rpm_installs_into_a_root_with_its_scripts_and_boots_running()
    {
        await FreshRootfsAsync();
        // rpm on the host installs into the rootfs (--root); its scriptlets run chrooted there
        var rpm = Packages.Rpm;
        async Task<CommandResult> Rpm(params string[] args) =>
            await CommandRunner.RunAsync("unshare", ["--mount", "--propagation", "private", "--", "bash", "-c",
                "mount -t proc proc \"$0/proc\" && mount --rbind /dev \"$0/dev\" && exec rpm --root \"$0\" \"$@\"", Rootfs, .. args],
                timeout: TimeSpan.FromMinutes(3));

        var install = await Rpm("-i", "--nodeps", rpm);
        Assert.True(install.Succeeded, $"rpm -i: {install}");
        Assert.Contains("crsc installed: configure /etc/crsc/config.yaml", install.Stdout);
        Assert.Equal($"crsc-{Packages.Version}-1.x86_64", (await Rpm("-q", "crsc")).Stdout.Trim());
        var verify = await Rpm("-V", "--nodeps", "crsc");
        Assert.True(verify.Succeeded && verify.Stdout.Trim().Length == 0, $"rpm -V: {verify}");
        Assert.Equal("/etc/crsc/config.yaml", (await Rpm("-qc", "crsc")).Stdout.Trim());
        AssertInstalledFiles();
        await AssertEnabledNotStartedAsync(argv => InRoot(argv));

        await BootAsync();
        Assert.Equal("active", (await InBooted("systemctl", "is-active", "crsc.service")).Stdout.Trim());
        await AssertStartsAndReportsAsync();
        await Ok(Script("halt", _work), "halt");

        var erase = await Rpm("-e", "--nodeps", "crsc");
        Assert.True(erase.Succeeded, $"rpm -e: {erase}");
        Assert.False(File.Exists(Rootfs + "/usr/bin/crsc"));
        Assert.False(File.Exists(Rootfs + "/etc/systemd/system/multi-user.target.wants/crsc.service"), "erase must disable the unit");
        Assert.True(Directory.Exists(Rootfs + "/var/lib/crsc/checkpoints"), "erase keeps the store (rpm has no purge)");
        output.WriteLine($"rpm install test: {_clock.Elapsed.TotalSeconds:0.0} s");
    }
}
