using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Crsc.Api;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Workloads;

/// <summary>One <c>crsc.io/interceptor-port</c> entry: the app port as written (name or number), its loopback port, and the env var naming it.</summary>
public sealed record InterceptorPortSpec(string Port, int Loopback, string? Env);

/// <summary>What the sidecar looks like; the defaults are production's.</summary>
public sealed record InterceptorSidecarOptions
{
    /// <summary>The registry and repository of crsc's image, as the static pod names it (<c>crsc manifests static-pod</c>).</summary>
    public const string DefaultRepository = "ghcr.io/crsc-io/crsc";

    /// <summary>
    /// The sidecar's image: the crsc image the daemon runs. Default <c>ghcr.io/crsc-io/crsc:&lt;this build's version&gt;</c>,
    /// the static pod's default; a daemon run from another image (e.g. <c>localhost/crsc:V</c>) must say so here.
    /// </summary>
    public string Image { get; init; } = $"{DefaultRepository}:{ThisVersion()}";

    /// <summary>
    /// The sidecar's command: the path in <see cref="Image"/> of <c>crsc-interceptor</c>, <c>crsc interceptor</c> as a
    /// small binary of its own (a Native AOT binary's resident set grows with its size; the 25 MB crsc binary idles at
    /// 25 MB, the small one at about 6 MB).
    /// </summary>
    public string Binary { get; init; } = "/usr/bin/crsc-interceptor";

    /// <summary>
    /// The sidecar's <c>resources</c> (JSON). Small: the proxy holds a bounded queue and aims at ≤ 15 MiB RSS; requests
    /// 10m CPU / 32Mi, limits 500m CPU (high enough not to throttle a loaded proxy) / 64Mi (room for the hold queue).
    /// </summary>
    public string Resources { get; init; } =
        """{"limits":{"cpu":"500m","memory":"64Mi"},"requests":{"cpu":"10m","memory":"32Mi"}}""";

    /// <summary>
    /// The sidecar's metrics port (<c>--metrics-listen :PORT</c>, containerPort <see cref="InterceptorInjection.MetricsPortName"/>);
    /// null: none. A pod that already uses this number or that name gets no metrics port (and no flag).
    /// </summary>
    public int? MetricsPort { get; init; } = 9464;

    private static string ThisVersion()
    {
        var informational = typeof(InterceptorSidecarOptions).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion;
        return informational is { Length: > 0 } v ? v.Split('+')[0] : "latest";
    }
}

/// <summary>
/// The one edit crsc makes to a workload's pod template (README "The interceptor sidecar"): for a Deployment annotated
/// <c>crsc.io/interceptor: "true"</c>, a sidecar <c>crsc-interceptor</c> takes over the app ports named in
/// <c>crsc.io/interceptor-port</c> (each containerPort moves from the app container to the sidecar, so Services keep
/// working by name and number) and forwards to the app on 127.0.0.1:&lt;loopback&gt;; the app learns its new port from
/// the env var of <c>crsc.io/interceptor-port-env</c>, if named. The pod template gets
/// <c>crsc.io/interceptor-sidecar-attached: "true"</c>, and the sidecar an emptyDir for its control socket.
/// <para>
/// What the edit replaced is recorded on the Deployment in <c>crsc.io/interceptor-original</c> (in the same write), so the
/// edit is undone exactly: the sidecar, its volume and the template annotation removed, the ports and env vars put back
/// where they were. Each reconcile first undoes crsc's edit on a copy and applies it again from the annotations; when
/// that gives the template the Deployment has, nothing is written. Pieces the API server defaulted (the sidecar's
/// terminationMessagePath, …) are kept when what crsc set is unchanged, so that its defaults never look like a change.
/// </para>
/// </summary>
public static partial class InterceptorInjection
{
    public const string SidecarName = PodFailureOptions.InterceptorSidecar;
    public const string VolumeName = "crsc-interceptor";
    public const string ControlDirectory = "/run/crsc-interceptor";
    public const string ControlSocket = ControlDirectory + "/control.sock";
    /// <summary>The name of the sidecar's metrics containerPort (at most 15 characters, as port names are).</summary>
    public const string MetricsPortName = "crsc-metrics";

    /// <summary>Whether the Deployment asks for the interceptor (<c>crsc.io/interceptor: "true"</c>).</summary>
    public static bool Wanted(Deployment deployment) =>
        deployment.Metadata.Annotations?.GetValueOrDefault(Annotations.Interceptor) == "true";

    /// <summary>What a reconcile of the injection does to a Deployment.</summary>
    /// <param name="Error">a bad annotation, naming it: nothing was changed</param>
    /// <param name="Changed">the template or the record changed (the Deployment must be written)</param>
    /// <param name="Description">what the injection now is, for the Event</param>
    public sealed record Outcome(string? Error, bool Changed, string Description);

    /// <summary>
    /// Brings <paramref name="deployment"/> (a copy, changed in place) to what its annotations ask: crsc's edit undone,
    /// and made again when <c>crsc.io/interceptor</c> is <c>"true"</c>. On a bad annotation the copy is left as it was.
    /// </summary>
    public static Outcome Reconcile(Deployment deployment, InterceptorSidecarOptions options)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        ArgumentNullException.ThrowIfNull(options);
        var annotations = deployment.Metadata.Annotations;
        var recordText = annotations?.GetValueOrDefault(Annotations.InterceptorOriginal);
        var record = recordText is null ? null : ParseRecord(recordText);
        var wanted = Wanted(deployment);
        List<InterceptorPortSpec>? ports = null;
        string? replayMethods = null;
        if (wanted && !TryParse(annotations, out ports, out var parseError)) return new Outcome(parseError, false, "");
        if (wanted && !TryParseReplay(annotations, out replayMethods, out var replayError)) return new Outcome(replayError, false, "");

        var template = deployment.Spec.Template;
        var before = JsonSerializer.SerializeToElement(template, KubeJsonContext.Default.PodTemplateSpec);
        var work = JsonSerializer.Deserialize(before, KubeJsonContext.Default.PodTemplateSpec)!;

        if (recordText is not null && record is null)
            return new Outcome($"annotation {Annotations.InterceptorOriginal}: '{recordText}' is not crsc's record of its " +
                               "template edit, so crsc cannot tell what to undo; the pod template is left as it is " +
                               "(remove the sidecar and that annotation by hand)", false, "");

        var previous = record is null ? null : Revert(work, record);
        string description;
        InterceptorRecord? newRecord = null;
        if (wanted)
        {
            var error = Inject(work, ports!, replayMethods, options, previous, out newRecord, out description);
            if (error is not null) return new Outcome(error, false, "");
        }
        else
        {
            description = $"removed the {SidecarName} sidecar ({Annotations.Interceptor} is not \"true\"): the pod template is as it was";
        }

        var after = JsonSerializer.SerializeToElement(work, KubeJsonContext.Default.PodTemplateSpec);
        // the record is compared as data: its text may have been formatted by someone else (kubectl edit)
        var sameRecord = record is null ? newRecord is null : newRecord is not null && RecordEquals(record, newRecord);
        if (sameRecord && JsonElement.DeepEquals(before, after)) return new Outcome(null, false, description);
        var newRecordText = newRecord is null ? null : JsonSerializer.Serialize(newRecord, InterceptorJsonContext.Default.InterceptorRecord);

        deployment.Spec.Template = work;
        if (newRecordText is null) deployment.Metadata.Annotations?.Remove(Annotations.InterceptorOriginal);
        else (deployment.Metadata.Annotations ??= [])[Annotations.InterceptorOriginal] = newRecordText;
        return new Outcome(null, true, description);
    }

    // ---- the annotations ----

    /// <summary>Reads <c>crsc.io/interceptor-port</c> and <c>crsc.io/interceptor-port-env</c>; the error names the annotation and the value.</summary>
    public static bool TryParse(IReadOnlyDictionary<string, string>? annotations, out List<InterceptorPortSpec> ports, out string error)
    {
        ports = [];
        error = "";
        var text = annotations?.GetValueOrDefault(Annotations.InterceptorPort);
        if (text is null)
        {
            error = $"annotation {Annotations.InterceptorPort} is required with {Annotations.Interceptor}: \"true\" " +
                    "(e.g. \"http:18080\": the containerPort the sidecar takes over and the loopback port the app moves to)";
            return false;
        }
        var entries = text.Split(',');
        var envText = annotations?.GetValueOrDefault(Annotations.InterceptorPortEnv);
        var envs = envText?.Split(',').Select(e => e.Trim()).ToArray();
        if (envs is not null && envs.Length != entries.Length)
        {
            error = $"annotation {Annotations.InterceptorPortEnv}: '{envText}' names {envs.Length} env var(s) for " +
                    $"{entries.Length} port(s) of {Annotations.InterceptorPort} '{text}' (one each, in the same order)";
            return false;
        }
        for (var i = 0; i < entries.Length; i++)
        {
            var parts = entries[i].Trim().Split(':');
            if (parts.Length != 2 || parts[0].Trim().Length == 0 || parts[1].Trim().Length == 0)
            {
                error = $"annotation {Annotations.InterceptorPort}: '{entries[i].Trim()}' in '{text}' is not <containerPort name or number>:<loopback port>";
                return false;
            }
            var port = parts[0].Trim();
            if (port.All(char.IsAsciiDigit) && !InRange(port))
            {
                error = $"annotation {Annotations.InterceptorPort}: port {port} in '{text}' is out of range (1-65535)";
                return false;
            }
            if (!port.All(char.IsAsciiDigit) && !PortName().IsMatch(port))
            {
                error = $"annotation {Annotations.InterceptorPort}: '{port}' in '{text}' is neither a port number nor a port name";
                return false;
            }
            var loopbackText = parts[1].Trim();
            if (!loopbackText.All(char.IsAsciiDigit))
            {
                error = $"annotation {Annotations.InterceptorPort}: loopback port '{loopbackText}' in '{text}' is not a number";
                return false;
            }
            if (!InRange(loopbackText))
            {
                error = $"annotation {Annotations.InterceptorPort}: loopback port {loopbackText} in '{text}' is out of range (1-65535)";
                return false;
            }
            var env = envs?[i];
            if (env is not null && !Identifier().IsMatch(env))
            {
                error = $"annotation {Annotations.InterceptorPortEnv}: '{env}' is not a valid environment variable name " +
                        "(letters, digits and '_', not starting with a digit)";
                return false;
            }
            ports.Add(new InterceptorPortSpec(port, int.Parse(loopbackText, CultureInfo.InvariantCulture), env));
        }
        return true;
    }

    /// <summary>
    /// Reads <c>crsc.io/interceptor-replay</c> (<c>"true"</c>/<c>"false"</c>, absent: false) and, when it is true,
    /// <c>crsc.io/interceptor-replay-methods</c> (required, not <c>none</c>: replay of nothing is a mistake to say, not to
    /// do quietly). <paramref name="methods"/> is null when replay is off; without replay the methods are ignored.
    /// </summary>
    public static bool TryParseReplay(IReadOnlyDictionary<string, string>? annotations, out string? methods, out string error)
    {
        methods = null;
        error = "";
        var replay = annotations?.GetValueOrDefault(Annotations.InterceptorReplay);
        if (replay is null or "false") return true;
        if (replay != "true")
        {
            error = $"annotation {Annotations.InterceptorReplay}: '{replay}' is neither \"true\" nor \"false\"";
            return false;
        }
        var text = annotations?.GetValueOrDefault(Annotations.InterceptorReplayMethods);
        if (text is null or "none")
        {
            error = $"annotation {Annotations.InterceptorReplayMethods} is required with {Annotations.InterceptorReplay}: \"true\" " +
                    "and is not none: the methods that are safe to replay (all, non-GET, or a list such as POST,PUT)";
            return false;
        }
        if (text is "all" or "non-GET")
        {
            methods = text;
            return true;
        }
        var listed = text.Split(',').Select(m => m.Trim()).ToList();
        if (listed.Any(m => m.Length == 0 || !m.All(char.IsAsciiLetterUpper)))
        {
            error = $"annotation {Annotations.InterceptorReplayMethods}: '{text}' is not all, non-GET or a comma list of upper-case methods (e.g. POST,PUT)";
            return false;
        }
        methods = string.Join(',', listed.Distinct(StringComparer.Ordinal));
        return true;
    }

    private static bool InRange(string digits) =>
        digits.Length <= 5 && int.Parse(digits, CultureInfo.InvariantCulture) is >= 1 and <= 65535;

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();

    /// <summary>IANA_SVC_NAME, as Kubernetes validates containerPort names.</summary>
    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")]
    private static partial Regex PortName();

    // ---- undo ----

    /// <summary>What <see cref="Revert"/> took out, so that the same edit made again leaves things where they were.</summary>
    private sealed record Previous(int SidecarIndex, Container? Sidecar, int VolumeIndex, Volume? Volume);

    /// <summary>
    /// Undoes crsc's edit in <paramref name="template"/>: the sidecar, its volume and the template annotation removed,
    /// each recorded port put back at its place in its container (unless the container has one of that name or number
    /// again), each recorded env var back to its original (only where it still holds the value crsc set).
    /// </summary>
    private static Previous Revert(PodTemplateSpec template, InterceptorRecord record)
    {
        var spec = template.Spec;
        var index = spec.Containers.FindIndex(c => c.Name == SidecarName);
        var sidecar = index >= 0 ? spec.Containers[index] : null;
        if (index >= 0) spec.Containers.RemoveAt(index);
        var volumeIndex = spec.Volumes?.FindIndex(v => v.Name == VolumeName) ?? -1;
        var volume = volumeIndex >= 0 ? spec.Volumes![volumeIndex] : null;
        if (volume is not null)
        {
            spec.Volumes!.RemoveAt(volumeIndex);
            if (spec.Volumes.Count == 0) spec.Volumes = null;
        }
        if (template.Metadata?.Annotations is { } a)
        {
            a.Remove(Annotations.InterceptorSidecarAttached);
            if (a.Count == 0) template.Metadata.Annotations = null;
        }
        // in reverse: each index is where the entry was before the ones after it were taken out
        foreach (var moved in Enumerable.Reverse(record.Ports))
        {
            if (spec.Containers.FirstOrDefault(c => c.Name == moved.Container) is not { } app) continue;
            var ports = app.Ports ??= [];
            if (ports.Any(p => p.Port == moved.Original.Port || (moved.Original.Name is { } n && p.Name == n))) continue;
            ports.Insert(Math.Clamp(moved.Index, 0, ports.Count), moved.Original);
        }
        foreach (var set in Enumerable.Reverse(record.Env))
        {
            if (spec.Containers.FirstOrDefault(c => c.Name == set.Container) is not { } app || app.Env is not { } env) continue;
            var i = env.FindIndex(e => e.Name == set.Name);
            if (i < 0 || env[i].Value != set.Value || env[i].ValueFrom is not null) continue; // the user's since
            if (set.Original is { } original) env[i] = original;
            else env.RemoveAt(i);
            if (env.Count == 0) app.Env = null;
        }
        return new Previous(index, sidecar, volumeIndex, volume);
    }

    // ---- do ----

    private static string? Inject(PodTemplateSpec template, List<InterceptorPortSpec> wanted, string? replayMethods, InterceptorSidecarOptions options,
        Previous? previous, out InterceptorRecord? record, out string description)
    {
        record = null;
        description = "";
        var spec = template.Spec;
        var portText = string.Join(",", wanted.Select(w => $"{w.Port}:{w.Loopback}"));
        string Problem(string what) => $"annotation {Annotations.InterceptorPort} '{portText}': {what}; the pod template is left as it is";

        if (spec.Containers.Any(c => c.Name == SidecarName) || spec.InitContainers?.Any(c => c.Name == SidecarName) == true)
            return Problem($"the pod template has a container named {SidecarName} that crsc did not add");
        if (spec.Volumes?.Any(v => v.Name == VolumeName) == true)
            return Problem($"the pod template has a volume named {VolumeName} that crsc did not add");

        var found = new List<(InterceptorPortSpec Wanted, Container App, ContainerPort Port)>();
        foreach (var w in wanted)
        {
            int? number = w.Port.All(char.IsAsciiDigit) ? int.Parse(w.Port, CultureInfo.InvariantCulture) : null;
            var numeric = number is not null;
            var matches = spec.Containers
                .SelectMany(c => (c.Ports ?? []).Select(p => (Container: c, Port: p)))
                .Where(x => numeric ? x.Port.Port == number : x.Port.Name == w.Port)
                .ToList();
            if (matches.Count == 0)
                return Problem(numeric ? $"no container declares containerPort {w.Port}" : $"no container declares a port named '{w.Port}'");
            if (matches.Count > 1)
                return Problem($"port {w.Port} is declared more than once ({string.Join(", ", matches.Select(m => $"container {m.Container.Name} {Describe(m.Port)}"))}); " +
                               "crsc cannot tell which to take over");
            var (app, port) = matches[0];
            if (port.Protocol is { } protocol && protocol != "TCP")
                return Problem($"port {w.Port} of container {app.Name} is {protocol}; the interceptor serves TCP only");
            if (found.Any(f => ReferenceEquals(f.Port, port)))
                return Problem($"port {w.Port} is listed twice");
            found.Add((w, app, port));
        }
        var taken = spec.Containers.SelectMany(c => (c.Ports ?? []).Select(p => (Container: c, Port: p))).ToList();
        foreach (var (w, _, _) in found)
        {
            if (taken.FirstOrDefault(t => t.Port.Port == w.Loopback) is { Container: not null } clash)
                return Problem($"loopback port {w.Loopback} for {w.Port} is already containerPort {Describe(clash.Port)} of container {clash.Container.Name}");
            if (found.Count(f => f.Wanted.Loopback == w.Loopback) > 1)
                return Problem($"loopback port {w.Loopback} is given to more than one port");
        }
        foreach (var group in found.Where(f => f.Wanted.Env is not null).GroupBy(f => (f.App.Name, f.Wanted.Env)))
        {
            if (group.Count() > 1)
                return Problem($"env var {group.Key.Env} of container {group.Key.Name} would be set for more than one port");
        }

        // valid: take the ports over, tell the app its new port, add the sidecar
        var movedPorts = new List<MovedPort>();
        var env = new List<SetEnv>();
        var sidecarPorts = new List<ContainerPort>();
        var args = new List<string>();
        // one sidecar for every port: pairs in order, as comma lists (crsc-interceptor --help)
        var listens = new List<string>();
        var upstreams = new List<string>();
        foreach (var (w, app, port) in found)
        {
            var loopback = w.Loopback.ToString(CultureInfo.InvariantCulture);
            movedPorts.Add(new MovedPort(app.Name, app.Ports!.IndexOf(port), port));
            app.Ports!.Remove(port);
            if (app.Ports.Count == 0) app.Ports = null;
            sidecarPorts.Add(port);
            listens.Add($"0.0.0.0:{port.Port.ToString(CultureInfo.InvariantCulture)}");
            upstreams.Add($"127.0.0.1:{loopback}");
            if (w.Env is { } name)
            {
                var vars = app.Env ??= [];
                var i = vars.FindIndex(e => e.Name == name);
                env.Add(new SetEnv(app.Name, name, loopback, i >= 0 ? vars[i] : null));
                var set = new EnvVar { Name = name, Value = loopback };
                if (i >= 0) vars[i] = set;
                else vars.Add(set);
            }
        }
        args.AddRange(["--listen", string.Join(',', listens), "--upstream", string.Join(',', upstreams),
            "--mode", "http", "--control-socket", ControlSocket]);
        // the replay log goes beside the control socket, on the emptyDir: it outlives a restart of the sidecar
        if (replayMethods is not null) args.AddRange(["--replay-methods", replayMethods]);
        // the metrics port, unless the pod uses its number or name already (on any container, or as a loopback port)
        var metricsPort = options.MetricsPort is { } mp
            && !spec.Containers.Concat(spec.InitContainers ?? []).SelectMany(c => c.Ports ?? []).Concat(sidecarPorts)
                .Any(x => x.Port == mp || x.Name == MetricsPortName)
            && !found.Any(f => f.Wanted.Loopback == mp)
            ? mp : (int?)null;
        if (metricsPort is { } metrics)
        {
            args.AddRange(["--metrics-listen", $":{metrics.ToString(CultureInfo.InvariantCulture)}"]);
            sidecarPorts.Add(new ContainerPort { Name = MetricsPortName, Port = metrics, Protocol = "TCP" });
        }

        var sidecar = new Container
        {
            Name = SidecarName,
            Image = options.Image,
            ImagePullPolicy = "IfNotPresent",
            Command = [options.Binary],
            Args = args,
            Ports = sidecarPorts,
            VolumeMounts = [new VolumeMount { Name = VolumeName, MountPath = ControlDirectory }],
            Resources = JsonDocument.Parse(options.Resources).RootElement.Clone(),
            Extra = new()
            {
                // no privileges: it only proxies loopback traffic and owns its socket
                ["securityContext"] = JsonDocument.Parse(
                    """{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true}""").RootElement.Clone(),
            },
        };
        // what the API server defaulted in the sidecar it stored stays, as long as what crsc sets is the same
        if (previous?.Sidecar is { } existing && SameAsCrscSetsIt(existing, sidecar)) sidecar = existing;
        spec.Containers.Insert(previous is { SidecarIndex: >= 0 } p ? Math.Min(p.SidecarIndex, spec.Containers.Count) : spec.Containers.Count, sidecar);
        var volume = previous?.Volume is { EmptyDir: not null } v ? v : new Volume { Name = VolumeName, EmptyDir = JsonDocument.Parse("{}").RootElement.Clone() };
        var volumes = spec.Volumes ??= [];
        volumes.Insert(previous is { VolumeIndex: >= 0 } pv ? Math.Min(pv.VolumeIndex, volumes.Count) : volumes.Count, volume);
        ((template.Metadata ??= new ObjectMeta()).Annotations ??= [])[Annotations.InterceptorSidecarAttached] = "true";

        record = new InterceptorRecord { Ports = movedPorts, Env = env };
        description = string.Join("; ", found.Select(f =>
            $"port {Describe(f.Port)} of container {f.App.Name} now served by the {SidecarName} sidecar, forwarding to 127.0.0.1:{f.Wanted.Loopback}" +
            (f.Wanted.Env is { } e
                ? $" (env {e}={f.Wanted.Loopback} set on {f.App.Name})"
                : $" (no {Annotations.InterceptorPortEnv}: container {f.App.Name} must listen on 127.0.0.1:{f.Wanted.Loopback} by itself)")))
            + (replayMethods is null ? "" : $"; {replayMethods} requests are logged and replayed after a restore")
            + (metricsPort is { } m ? $"; its metrics on port {MetricsPortName} ({m.ToString(CultureInfo.InvariantCulture)})"
                : options.MetricsPort is { } wantedMetrics ? $"; no metrics port: the pod already uses port {wantedMetrics.ToString(CultureInfo.InvariantCulture)} or the name {MetricsPortName}" : "");
        return null;
    }

    private static string Describe(ContainerPort port) =>
        port.Name is { Length: > 0 } n ? $"{n} ({port.Port.ToString(CultureInfo.InvariantCulture)})" : port.Port.ToString(CultureInfo.InvariantCulture);

    private static bool SameAsCrscSetsIt(Container existing, Container wanted) =>
        existing.Image == wanted.Image
        && existing.ImagePullPolicy == wanted.ImagePullPolicy
        && Same(existing.Command, wanted.Command)
        && Same(existing.Args, wanted.Args)
        && (existing.Ports ?? []).Select(p => (p.Name, p.Port, p.Protocol, p.HostPort))
            .SequenceEqual((wanted.Ports ?? []).Select(p => (p.Name, p.Port, p.Protocol, p.HostPort)))
        && (existing.VolumeMounts ?? []).Select(m => (m.Name, m.MountPath, m.ReadOnly, m.SubPath))
            .SequenceEqual((wanted.VolumeMounts ?? []).Select(m => (m.Name, m.MountPath, m.ReadOnly, m.SubPath)))
        && existing.Env is null
        && existing.Resources is { } r && JsonElement.DeepEquals(r, wanted.Resources!.Value)
        && existing.Extra?.GetValueOrDefault("securityContext") is { ValueKind: JsonValueKind.Object } sc
        && JsonElement.DeepEquals(sc, wanted.Extra!["securityContext"]);

    private static bool Same(List<string>? a, List<string>? b) => (a ?? []).SequenceEqual(b ?? [], StringComparer.Ordinal);

    // ---- the record ----

    private static InterceptorRecord? ParseRecord(string text)
    {
        try
        {
            return JsonSerializer.Deserialize(text, InterceptorJsonContext.Default.InterceptorRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool RecordEquals(InterceptorRecord a, InterceptorRecord b) =>
        JsonElement.DeepEquals(JsonSerializer.SerializeToElement(a, InterceptorJsonContext.Default.InterceptorRecord),
            JsonSerializer.SerializeToElement(b, InterceptorJsonContext.Default.InterceptorRecord));
}

/// <summary>The value of <c>crsc.io/interceptor-original</c>: what the injection changed in the pod template.</summary>
public sealed class InterceptorRecord
{
    /// <summary>The containerPorts moved to the sidecar: their container, their place in its list, and the port as it was.</summary>
    public List<MovedPort> Ports { get; set; } = [];
    /// <summary>The env vars set: their container and name, the value crsc set, and the variable as it was (null: absent).</summary>
    public List<SetEnv> Env { get; set; } = [];
}

public sealed record MovedPort(string Container, int Index, ContainerPort Original);

public sealed record SetEnv(string Container, string Name, string Value, EnvVar? Original);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InterceptorRecord))]
internal sealed partial class InterceptorJsonContext : JsonSerializerContext;
