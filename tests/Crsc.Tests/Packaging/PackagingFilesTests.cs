using Crsc.Configuration;
using Crsc.Testing;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests.Packaging;

/// <summary>
/// The files the packages install, checked against the code they describe: the default
/// /etc/crsc/config.yaml against the configuration keys and defaults, the systemd unit against the
/// paths crsc writes, nfpm.yaml against the repository. (The built packages themselves are checked by
/// tests/Crsc.E2E.Tests/Packaging.)
/// </summary>
public sealed class PackagingFilesTests
{
    private static readonly string ConfigFile = Repository.File("packaging", "config.yaml");

    /// <summary>The settings of config.yaml uncommented: lines "# key: value" (prose lines start with "##").</summary>
    private static string UncommentedSettings() => string.Join("\n", File.ReadAllLines(ConfigFile)
        .Where(l => l.StartsWith("# ", StringComparison.Ordinal))
        .Select(l => l[2..]));

    [Fact]
    public void The_installed_config_file_is_valid_and_changes_nothing()
    {
        using var dir = new TempDir();
        var config = Path.Combine(dir.Path, "config.yaml");
        File.Copy(ConfigFile, config);
        var result = ConfigLoader.Load(config, new Dictionary<string, string>(), new Dictionary<string, string>());
        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        Assert.Equal(new CrscOptions(), result.Options);
    }

    [Fact]
    public void Every_commented_setting_is_a_known_key_shown_with_its_default()
    {
        using var dir = new TempDir();
        var config = Path.Combine(dir.Path, "config.yaml");
        File.WriteAllText(config, UncommentedSettings());
        var result = ConfigLoader.Load(config, new Dictionary<string, string>(), new Dictionary<string, string>());
        // nodeName is shown empty (meaning "the host name"), which is not a valid node name itself
        Assert.Equal(["nodeName"], result.Errors.Select(e => e.Key));
        var shown = result.Sources.Where(s => s.Value.StartsWith(config, StringComparison.Ordinal)).Select(s => s.Key).ToHashSet();
        var defaults = new CrscOptions();
        foreach (var key in ConfigKeys.All.Where(k => shown.Contains(k.YamlPath) && k.YamlPath != "nodeName"))
            Assert.True(key.Get(defaults) == key.Get(result.Options), $"config.yaml shows {key.YamlPath}: '{key.Get(result.Options)}', the default is '{key.Get(defaults)}'");
        // and it shows every key crsc has: a new key goes into packaging/config.yaml (and the README's table) too
        var missing = ConfigKeys.All.Select(k => k.YamlPath).Where(k => !shown.Contains(k)).ToList();
        Assert.True(missing.Count == 0, $"packaging/config.yaml does not show {string.Join(", ", missing)}: add them, commented out with their defaults");
    }

    [Fact]
    public void The_readme_configuration_table_has_every_key_with_its_variable_flag_and_default()
    {
        var rows = File.ReadAllLines(Repository.File("README.md")).Where(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();
        var defaults = new CrscOptions();
        foreach (var key in ConfigKeys.All)
        {
            var row = rows.FirstOrDefault(r => r.StartsWith($"| `{key.YamlPath}`", StringComparison.Ordinal));
            Assert.True(row is not null, $"README.md's configuration table has no row for {key.YamlPath}");
            Assert.Contains($"`{key.EnvironmentVariables[0]}`", row);
            Assert.Contains($"`{key.Flag}`", row);
            var value = key.Get(defaults);
            if (value.Length > 0 && key.YamlPath != "nodeName") Assert.Contains($"`{value}`", row);
        }
    }

    private static Dictionary<string, List<string>> UnitSettings()
    {
        var settings = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var section = "";
        foreach (var raw in File.ReadAllLines(Repository.File("systemd", "crsc.service")))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith('[')) { section = line.Trim('[', ']'); continue; }
            var eq = line.IndexOf('=');
            var key = $"{section}.{line[..eq]}";
            if (!settings.TryGetValue(key, out var values)) settings[key] = values = [];
            values.Add(line[(eq + 1)..]);
        }
        return settings;
    }

    [Fact]
    public void The_unit_is_a_notify_service_with_watchdog_ordered_between_runtime_and_kubelet()
    {
        var u = UnitSettings();
        Assert.Equal(["notify"], u["Service.Type"]);
        Assert.Equal(["/usr/bin/crsc daemon"], u["Service.ExecStart"]);
        Assert.Equal(["on-failure"], u["Service.Restart"]);
        Assert.True(GoDurationSeconds(u["Service.WatchdogSec"].Single()) > 0);
        Assert.Contains("crio.service", u["Unit.After"].Single().Split(' '));
        Assert.Contains("containerd.service", u["Unit.After"].Single().Split(' '));
        Assert.Contains("kubelet.service", u["Unit.Before"].Single().Split(' '));
        Assert.Equal(["crsc"], u["Service.StateDirectory"]);
        Assert.Equal(["crsc"], u["Service.RuntimeDirectory"]);
        Assert.Equal(["strict"], u["Service.ProtectSystem"]);
        Assert.Equal(["yes"], u["Service.NoNewPrivileges"]);
        Assert.Equal(["multi-user.target"], u["Install.WantedBy"]);
    }

    private static int GoDurationSeconds(string v) => int.Parse(v.TrimEnd('s'), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Every_directory_crsc_writes_by_default_is_writable_under_the_units_protect_system_strict()
    {
        var u = UnitSettings();
        var writable = new List<string> { "/var/lib/" + u["Service.StateDirectory"].Single(), "/run/" + u["Service.RuntimeDirectory"].Single() };
        var optional = u["Service.ReadWritePaths"].SelectMany(v => v.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        // paths a node may not have must carry "-", or the unit fails to start there
        Assert.All(optional, p => Assert.StartsWith("-", p));
        writable.AddRange(optional.Select(p => p.TrimStart('-')));
        var o = new CrscOptions();
        foreach (var path in new[] { o.CheckpointDir, o.StagingDir, o.StateDir, o.ManifestsDir, o.InactiveManifestsDir, o.Socket,
                                     o.CheckpointSecretsDir, o.CheckpointConfigMapsDir, "/var/lib/kubelet/checkpoints" })
            Assert.True(writable.Any(w => path == w || path.StartsWith(w + "/", StringComparison.Ordinal)), $"{path} is read-only for the unit (writable: {string.Join(" ", writable)})");
    }

    [Fact]
    public void Nfpm_yaml_lists_files_that_exist_and_scripts_that_are_executable()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Repository.File("nfpm.yaml"))));
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        var contents = ((YamlSequenceNode)root["contents"]).Children.Cast<YamlMappingNode>().ToList();
        var dsts = contents.Select(c => ((YamlScalarNode)c["dst"]).Value!).ToList();
        Assert.Contains("/usr/bin/crsc", dsts);
        Assert.Contains("/usr/bin/crsc-interceptor", dsts); // the sidecar's small binary, as in the image
        Assert.Contains("/lib/systemd/system/crsc.service", dsts);
        Assert.Contains("/usr/share/crsc/static-pod.yaml", dsts);
        var config = contents.Single(c => ((YamlScalarNode)c["dst"]).Value == "/etc/crsc/config.yaml");
        Assert.Equal("config|noreplace", ((YamlScalarNode)config["type"]).Value);
        foreach (var c in contents.Where(c => c.Children.ContainsKey("src")))
        {
            var src = ((YamlScalarNode)c["src"]).Value!;
            if (src is "bin/crsc" or "bin/crsc-interceptor") continue; // the build's output
            Assert.True(File.Exists(Repository.File(src)) || Directory.Exists(Repository.File(src)), $"nfpm.yaml: src {src} does not exist");
        }
        foreach (var (_, path) in (YamlMappingNode)root["scripts"])
        {
            var file = Repository.File(((YamlScalarNode)path).Value!);
            Assert.True(File.Exists(file), $"{file} missing");
            Assert.True(File.GetUnixFileMode(file).HasFlag(UnixFileMode.UserExecute), $"{file} is not executable");
            Assert.StartsWith("#!/bin/sh\n", File.ReadAllText(file));
        }
    }
}
