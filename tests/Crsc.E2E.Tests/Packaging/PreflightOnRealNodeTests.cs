using Crsc.E2E.Tests.Binary;
using Crsc.E2E.Tests.Sandbox;

namespace Crsc.E2E.Tests.Packaging;

/// <summary>
/// `crsc preflight` (the published binary) on a node that has what crsc needs: the sandbox's namespace
/// with containerd 2.1 on its CRI socket and CRIU 4 — every essential row OK, exit 0.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class PreflightOnRealNodeTests(RealRuntimeFixture sandbox)
{
    [RealComponentsFact]
    public async Task Preflight_passes_with_containerd_and_criu_4()
    {
        var dir = sandbox.CreateSharedDirectory("preflight-");
        try
        {
            var binary = Path.Combine(dir, "crsc");
            File.Copy(PublishedBinary.Path, binary);
            File.SetUnixFileMode(binary, (UnixFileMode)0b111_101_101);
            var r = await sandbox.InNamespaceAsync([binary, "preflight", "--runtime-endpoint", sandbox.CriEndpoint,
                "--checkpoint-dir", Path.Combine(dir, "checkpoints"), "--staging-dir", Path.Combine(dir, "staging"),
                "--state-dir", Path.Combine(dir, "state"), "--socket", Path.Combine(dir, "run", "crsc.sock")], TimeSpan.FromMinutes(2));
            var output = r.Stdout;
            // the whole report on a mismatch (Assert.Matches cuts the value to its first line or two)
            void Has(string pattern, string text) =>
                Assert.True(System.Text.RegularExpressions.Regex.IsMatch(text, pattern), $"no line matches /{pattern}/ in:\n{text}");
            Has($@"runtime socket\s+OK\s+{sandbox.CriSocketPath} answers \(CRI v1", output);
            Has(@"runtime version\s+OK\s+containerd v?2\.[1-3]\.", output);
            Has(@"\ncriu\s+OK\s+CRIU [4-9]\.", output);
            Has(@"criu check\s+OK\s+Looks good", output);
            // containerd 2.1 restores through CreateContainer with no opt-in, and CRIU is there: both capabilities
            Has(@"checkpoint support\s+OK\s", output);
            Has(@"restore support\s+OK\s", output);
            Has(@"kernel\s+OK\s+.*ns_last_pid", output);
            Has(@"checkpointDir\s+OK\s+.*the daemon creates it", output);
            Assert.False(output.Contains("FAIL", StringComparison.Ordinal), output);
            Assert.True(r.ExitCode == 0, r.ToString());

            // and it fails, naming the fix, when the runtime is not where the configuration says
            var wrong = await sandbox.InNamespaceAsync([binary, "preflight", "--runtime-endpoint", "unix://" + Path.Combine(dir, "nothing.sock")], TimeSpan.FromMinutes(2));
            Assert.Equal(1, wrong.ExitCode);
            Has(@"runtime socket\s+FAIL\s+.*nothing\.sock does not exist\n\s+fix: ", wrong.Stdout);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
