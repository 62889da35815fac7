using Crsc.Cli;
using Crsc.Testing;

namespace Crsc.Tests;

public sealed class CommandLineTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Unknown_verb_is_a_usage_error_naming_it()
    {
        var (code, _, err) = await Run("frobnicate");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("unknown command 'frobnicate'", err);
        Assert.Contains("daemon", err); // lists what exists
    }

    [Fact]
    public async Task Unknown_flag_is_a_usage_error_naming_it_and_the_verb()
    {
        var (code, _, err) = await Run("version", "--frob");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("unknown option '--frob' for 'crsc version'", err);
        Assert.Contains("crsc version --help", err);
    }

    [Fact]
    public async Task A_flag_without_its_value_is_a_usage_error()
    {
        var (code, _, err) = await Run("daemon", "--socket");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("'--socket'", err);
    }

    [Fact]
    public async Task Extra_arguments_are_a_usage_error()
    {
        var (code, _, err) = await Run("version", "extra");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("extra", err);
    }

    [Fact]
    public async Task A_variadic_argument_takes_every_word_after_the_double_dash_options_included()
    {
        ParsedCommand? got = null;
        var root = new CommandSpec("crsc", "test")
        {
            Subcommands =
            [
                new CommandSpec("run", "run")
                {
                    Options = [new OptionSpec("--config", "FILE", "config")],
                    Arguments = [new ArgumentSpec("CMD", "command", Required: false, Variadic: true)],
                    Handler = (p, _) => { got = p; return Task.FromResult(0); },
                },
            ],
        };
        var help = new StringWriter();
        var code = await new CommandLineParser(root, help, TextWriter.Null).RunAsync(["run", "--config", "f", "--", "sh", "-c", "echo --config", "x"], default);

        Assert.Equal(0, code);
        Assert.Equal(["sh", "-c", "echo --config", "x"], got!.Arguments);
        Assert.Equal("f", got.Value("--config"));
        await new CommandLineParser(root, help, TextWriter.Null).RunAsync(["run", "--help"], default);
        Assert.Contains("Usage: crsc run [options] [-- CMD...]", help.ToString());
    }

    [Fact]
    public async Task Run_without_a_command_is_a_usage_error()
    {
        var (code, _, err) = await Run("run", "--config", "/nonexistent/run.yaml");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("'crsc run' needs the command to run after --", err);
    }

    [Fact]
    public async Task No_verb_prints_help_and_exits_2()
    {
        var (code, _, err) = await Run();
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("Commands:", err);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("daemon", "--help")]
    [InlineData("version", "-h")]
    [InlineData("config", "--help")]
    [InlineData("config", "check", "--help")]
    [InlineData("interceptor", "--help")]
    [InlineData("run", "--help")]
    public async Task Every_verb_has_help(params string[] args)
    {
        var (code, output, _) = await Run(args);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("Usage: crsc", output);
        Assert.Contains("--help", output);
    }

    [Fact]
    public async Task Daemon_help_lists_every_configuration_flag_with_its_key_and_variable()
    {
        var (_, output, _) = await Run("daemon", "--help");
        foreach (var k in Crsc.Configuration.ConfigKeys.All)
        {
            Assert.Contains(k.Flag, output);
            Assert.Contains(k.YamlPath, output);
        }
        Assert.Contains("$CRSC_RUNTIME_ENDPOINT", output);
    }

    [Fact]
    public async Task Version_prints_version_commit_and_flavour()
    {
        var (code, output, _) = await Run("version");
        Assert.Equal(0, code);
        Assert.Matches(@"^crsc \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,}|unknown, jit, ", output);
        Assert.Contains("jit", output); // tests run on the JIT; the e2e test checks the AOT binary says aot
    }

    [Fact]
    public async Task Config_check_of_a_bad_file_exits_78_naming_key_and_value()
    {
        using var dir = new TempDir();
        var path = dir.Combine("c.yaml");
        File.WriteAllText(path, "runtime:\n  checkpointVia: crio\n");
        var (code, output, err) = await Run("config", "check", path);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains("runtime.checkpointVia", err);
        Assert.Contains("\"crio\"", err);
        Assert.Contains("checkpointVia:", output); // the effective values are still printed
    }

    [Fact]
    public async Task Daemon_with_an_http_kubelet_url_exits_78_naming_kubelet_url()
    {
        using var dir = new TempDir();
        var path = dir.Combine("c.yaml");
        File.WriteAllText(path, "runtime:\n  checkpointVia: kubelet\nkubelet:\n  url: http://127.0.0.1:10255\n");
        var (code, _, err) = await Run("daemon", "--config", path);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains("kubelet.url", err);
        Assert.Contains("\"http://127.0.0.1:10255\"", err);
    }

    [Fact]
    public async Task Daemon_with_a_recursive_yaml_alias_in_its_configuration_exits_78_naming_file_and_line()
    {
        // it used to overflow the stack (SIGSEGV under AOT), so systemd restarted it in a loop
        using var dir = new TempDir();
        var path = dir.Combine("c.yaml");
        File.WriteAllText(path, "namespace: team-a\nnodeName: &n [*n]\n");
        var (code, _, err) = await Run("daemon", "--config", path);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains(path, err);
        Assert.Contains("&n at line 2,", err);
        Assert.Contains("refusing to start", err);
    }

    [Theory]
    [InlineData("checkpointDir", "--checkpoint-dir")]
    [InlineData("stagingDir", "--staging-dir")]
    public async Task Daemon_refuses_a_pre_existing_store_directory_open_to_others_with_78_and_leaves_its_mode(string key, string flag)
    {
        using var dir = new TempDir();
        var open = (UnixFileMode)0b111_101_101; // e.g. /var/lib by typo
        var target = dir.Combine("given");
        Directory.CreateDirectory(target);
        File.SetUnixFileMode(target, open);
        var flags = new Dictionary<string, string>
        {
            ["--checkpoint-dir"] = dir.Combine("checkpoints"),
            ["--staging-dir"] = dir.Combine("staging"),
            ["--state-dir"] = dir.Combine("state"),
            ["--socket"] = dir.Combine("run", "crsc.sock"),
            ["--config"] = dir.Combine("none.yaml"),
        };
        flags[flag] = target;
        File.WriteAllText(flags["--config"], "");
        var (code, _, err) = await Run(["daemon", .. flags.SelectMany(f => new[] { f.Key, f.Value })]);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains(key, err);
        Assert.Contains(target, err);
        Assert.Equal(open, File.GetUnixFileMode(target));
    }

    [Fact]
    public async Task Config_check_of_a_good_file_prints_values_and_sources()
    {
        using var dir = new TempDir();
        var path = dir.Combine("c.yaml");
        File.WriteAllText(path, "namespace: team-a\n");
        var (code, output, err) = await Run("config", "check", path, "--socket", "/tmp/x.sock");
        Assert.True(code == 0, err);
        Assert.Contains("namespace:", output);
        Assert.Contains("team-a", output);
        Assert.Contains(path + ":1", output);
        Assert.Contains("flag --socket", output);
        Assert.Contains("configuration is valid", output);
    }

    [Fact]
    public async Task Option_values_may_be_given_with_equals()
    {
        using var dir = new TempDir();
        var (code, output, _) = await Run("config", "check", "--namespace=abc", "--config=" + dir.Combine("missing.yaml"));
        Assert.Equal(ExitCodes.Config, code); // the explicit file is missing
        Assert.Contains("abc", output);
    }

    [Fact]
    public async Task Manifests_prints_the_embedded_crds_and_refuses_an_unknown_kind()
    {
        var (code, output, err) = await Run("manifests", "crds");
        Assert.True(code == 0, err);
        Assert.Equal(5, System.Text.RegularExpressions.Regex.Matches(output, "kind: CustomResourceDefinition").Count);
        var (bad, _, badErr) = await Run("manifests", "nonsense");
        Assert.Equal(ExitCodes.Usage, bad);
        Assert.Contains("'nonsense'", badErr);
        Assert.Contains("crds", badErr);
    }

    [Fact]
    public async Task Manifests_all_is_what_kubectl_applies_and_leaves_the_static_pod_out()
    {
        var (code, output, err) = await Run("manifests");
        Assert.True(code == 0, err);
        Assert.Contains("kind: ClusterRole", output);
        Assert.DoesNotMatch(@"(?m)^kind: Pod\s*$", output);
        var (_, help, _) = await Run("manifests", "--help");
        Assert.Contains("crsc manifests static-pod", help);
        Assert.Contains("all (CRDs and RBAC", help);
    }

    [Theory]
    [InlineData("version")]
    [InlineData("manifests")]
    [InlineData("config")]
    [InlineData("interceptor")]
    public async Task Verbs_that_read_no_configuration_do_not_list_or_take_config(string verb)
    {
        var (code, output, _) = await Run(verb, "--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.DoesNotContain("--config", output);
        Assert.DoesNotContain("-c,", output);
        if (verb == "config") return; // a group: `crsc config --config F check` is check's
        var (bad, _, err) = await Run(verb, "--config", "/etc/crsc/config.yaml");
        Assert.Equal(ExitCodes.Usage, bad);
        Assert.Contains($"option '--config' does not apply to 'crsc {verb}'", err);
        (bad, _, err) = await Run("-c", "/etc/crsc/config.yaml", verb);
        Assert.Equal(ExitCodes.Usage, bad);
        Assert.Contains($"option '--config' does not apply to 'crsc {verb}'", err);
    }

    [Theory]
    [InlineData("daemon")]
    [InlineData("config", "check")]
    [InlineData("preflight")]
    [InlineData("checkpoint")]
    [InlineData("restore")]
    [InlineData("list")]
    [InlineData("inspect")]
    [InlineData("gc")]
    public async Task Verbs_that_read_configuration_list_config_once(params string[] verb)
    {
        var (code, output, _) = await Run([.. verb, "--help"]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(output, @"-c, --config FILE"));
    }

    [Fact]
    public async Task Config_may_still_come_before_the_verb_that_reads_it()
    {
        using var dir = new TempDir();
        var path = dir.Combine("c.yaml");
        File.WriteAllText(path, "namespace: team-b\n");
        var (code, output, err) = await Run("--config", path, "config", "check");
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains("team-b", output);
        Assert.Contains(path + ":1", output);
    }

    [Theory]
    [InlineData("unknown command 'chekpoint' for 'crsc' (did you mean 'checkpoint'?)", "chekpoint", "shop/cart-0")]
    [InlineData("unknown command 'verison' for 'crsc' (did you mean 'version'?)", "verison")]
    [InlineData("unknown command 'lsit' for 'crsc' (did you mean 'list'?)", "lsit")]
    [InlineData("unknown command 'chek' for 'crsc config' (did you mean 'check'?)", "config", "chek")]
    [InlineData("unknown option '--dryrun' for 'crsc gc' (did you mean '--dry-run'?)", "gc", "--dryrun")]
    [InlineData("unknown option '--keep_last' for 'crsc gc' (did you mean '--keep-last'?)", "gc", "--keep_last=3")]
    [InlineData("unknown option '-json' for 'crsc list' (did you mean '--json'?)", "list", "-json")]
    [InlineData("unknown option '--hepl' for 'crsc version' (did you mean '--help'?)", "version", "--hepl")]
    [InlineData("unknown manifest kind 'crd' (did you mean 'crds'?)", "manifests", "crd")]
    public async Task A_mistyped_command_or_option_gets_a_suggestion(string expected, params string[] args)
    {
        var (code, output, err) = await Run(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Contains(expected, err);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("ls")]
    [InlineData("x")]
    public async Task Nothing_close_gets_no_suggestion(string verb)
    {
        var (code, _, err) = await Run(verb);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.DoesNotContain("did you mean", err);
        Assert.Contains("commands: daemon", err);
    }

    [Fact]
    public void Edit_distance_counts_a_swap_of_neighbours_as_one()
    {
        Assert.Equal(0, Suggestions.Distance("gc", "gc"));
        Assert.Equal(1, Suggestions.Distance("lsit", "list"));
        Assert.Equal(1, Suggestions.Distance("chekpoint", "checkpoint"));
        Assert.Equal(2, Suggestions.Distance("ls", "gc"));
        Assert.Equal(3, Suggestions.Distance("", "abc"));
        Assert.Equal(["inspect"], Suggestions.For("insp", ["inspect", "list", "gc"]));
        Assert.Equal(["--max-age", "--max-bytes"], Suggestions.For("--max", ["--max-age", "--max-bytes", "--json"]));
    }

    [Theory]
    [InlineData]
    [InlineData("gc")]
    [InlineData("config")]
    [InlineData("config", "check")]
    [InlineData("help")]
    public async Task Help_verb_prints_what_help_flag_prints(params string[] command)
    {
        var (code, output, err) = await Run(["help", .. command]);
        Assert.True(code == ExitCodes.Ok, err);
        var (flagCode, flagOutput, _) = await Run([.. command, "--help"]);
        Assert.Equal(ExitCodes.Ok, flagCode);
        Assert.Equal(flagOutput, output);
        Assert.Contains("Usage: crsc", output);
        Assert.Equal("", err);
    }

    [Fact]
    public async Task Help_verb_is_listed_and_refuses_what_it_cannot_show()
    {
        var (_, root, _) = await Run("--help");
        Assert.Matches(@"(?m)^  help\s+Show help for a command", root);

        var (code, _, err) = await Run("help", "chekpoint");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("unknown command 'chekpoint' for 'crsc' (did you mean 'checkpoint'?)", err);
        (code, _, err) = await Run("help", "gc", "now");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("'crsc gc' has no sub-commands", err);
        (code, _, err) = await Run("help", "--json");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("takes command names", err);
    }

    [Fact]
    public async Task Config_check_of_a_missing_file_fails_at_once_naming_it()
    {
        using var dir = new TempDir();
        var missing = dir.Combine("nonexistent.yaml");
        var (code, output, err) = await Run("config", "check", missing);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Equal("", output); // no "(none; defaults)" and no table of defaults
        Assert.Equal($"crsc: cannot check {missing}: no such file\n", err.ReplaceLineEndings("\n"));

        (code, output, err) = await Run("config", "check", dir.Path);
        Assert.Equal(ExitCodes.Config, code);
        Assert.Equal("", output);
        Assert.Contains($"cannot check {dir.Path}: it is a directory", err);
        Assert.DoesNotContain("--config", err);
    }
}
