using Crsc.E2E.Tests.Sandbox;

namespace Crsc.E2E.Tests.Packaging;

/// <summary>
/// The .deb and .rpm `make package` built hold what nfpm.yaml lists: files with their modes and owners,
/// conffiles, dependencies, and the scripts byte for byte — read back with dpkg-deb and rpm.
/// </summary>
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class PackageContentsTests
{
    private static string Name => Packages.Scalar(Packages.Nfpm, "name");

    [RealComponentsFact]
    public async Task Deb_control_fields_match_nfpm_yaml()
    {
        var deb = Packages.Deb;
        var fields = (await Packages.OutputOfAsync("dpkg-deb", "-f", deb)).Split('\n');
        string Field(string f) => fields.Single(l => l.StartsWith(f + ": ", StringComparison.Ordinal))[(f.Length + 2)..].Trim();
        Assert.Equal(Name, Field("Package"));
        Assert.Equal(Packages.Version, Field("Version"));
        Assert.Equal(Packages.Scalar(Packages.Nfpm, "arch"), Field("Architecture"));
        Assert.Equal(Packages.Scalar(Packages.Nfpm, "maintainer"), Field("Maintainer"));
        Assert.Equal(string.Join(", ", Packages.List("depends")), Field("Depends"));
        Assert.Equal(Packages.Scalar(Packages.Nfpm, "section"), Field("Section"));
        Assert.Equal(Packages.Scalar(Packages.Nfpm, "homepage"), Field("Homepage"));
        Assert.StartsWith(Packages.Scalar(Packages.Nfpm, "description").Split('\n')[0], Field("Description"));
        // the binary's own version is the package's
        var binary = Path.Combine(Packages.RepositoryRoot, "bin", "crsc");
        if (File.Exists(binary)) Assert.Equal(Packages.Version, (await Packages.OutputOfAsync(binary, "version", "--short")).Trim());
    }

    [RealComponentsFact]
    public async Task Deb_files_modes_owners_conffiles_and_scripts_match_nfpm_yaml()
    {
        var listing = (await Packages.OutputOfAsync("dpkg-deb", "-c", Packages.Deb))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(f => "/" + f[^1].TrimStart('.').Trim('/'), f => (Mode: f[0], Owner: f[1], Size: f[2]));
        var contents = Packages.Contents();
        foreach (var p in contents)
        {
            Assert.True(listing.TryGetValue(p.Destination, out var entry), $"{p.Destination} is not in the .deb; it holds: {string.Join(", ", listing.Keys)}");
            Assert.Equal("root/root", entry.Owner);
            Assert.Equal((p.IsDirectory ? "d" : "-") + Packages.Permissions(p.Mode), entry.Mode);
            if (!p.IsDirectory) Assert.Equal(new FileInfo(p.Source!).Length.ToString(System.Globalization.CultureInfo.InvariantCulture), entry.Size);
        }
        // nothing else but the directories leading to them
        var files = listing.Where(kv => !kv.Value.Mode.StartsWith('d')).Select(kv => kv.Key).Order(StringComparer.Ordinal);
        Assert.Equal(contents.Where(p => !p.IsDirectory).Select(p => p.Destination).Order(StringComparer.Ordinal), files);

        using var control = new TempControlDir();
        await Packages.OutputOfAsync("dpkg-deb", "-e", Packages.Deb, control.Path);
        var conffiles = File.ReadAllLines(Path.Combine(control.Path, "conffiles")).Where(l => l.Length > 0);
        Assert.Equal(contents.Where(p => p.IsConfig).Select(p => p.Destination), conffiles);
        var scripts = Packages.Scripts();
        foreach (var (nfpmName, debName) in new[] { ("postinstall", "postinst"), ("preremove", "prerm"), ("postremove", "postrm"), ("preinstall", "preinst") })
        {
            var path = Path.Combine(control.Path, debName);
            if (!scripts.TryGetValue(nfpmName, out var text)) { Assert.False(File.Exists(path), $"{debName} is in the .deb but not in nfpm.yaml"); continue; }
            Assert.Equal(text, File.ReadAllText(path));
            Assert.True(File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute), $"{debName} is not executable");
        }
    }

    [RealComponentsFact]
    public async Task Both_packages_carry_the_licence_the_rpm_header_names()
    {
        var licence = Packages.Scalar(Packages.Nfpm, "license");
        Assert.Equal("Apache-2.0", licence);
        Assert.Contains("Apache License", File.ReadAllText(Path.Combine(Packages.RepositoryRoot, "LICENSE")));
        // Debian's copyright file, at the place Debian policy puts it, in both packages
        using var deb = new TempControlDir();
        await Packages.OutputOfAsync("dpkg-deb", "-x", Packages.Deb, deb.Path);
        var fromDeb = File.ReadAllText(Path.Combine(deb.Path, "usr/share/doc/crsc/copyright"));
        Assert.Contains("License: " + licence, fromDeb);
        var fromRpm = await Packages.OutputOfAsync("sh", "-c", $"rpm2cpio '{Packages.Rpm}' | cpio -i --quiet --to-stdout ./usr/share/doc/crsc/copyright");
        Assert.Equal(fromDeb, fromRpm);
    }

    [RealComponentsFact]
    public async Task Rpm_header_files_config_and_scripts_match_nfpm_yaml()
    {
        var rpm = Packages.Rpm;
        var header = (await Packages.OutputOfAsync("rpm", "-qp", "--queryformat", "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{SUMMARY}", rpm)).Trim().Split('|');
        Assert.Equal([Name, Packages.Version, "1", "x86_64", Packages.Scalar(Packages.Nfpm, "license"), Packages.Scalar(Packages.Nfpm, "homepage"),
                      Packages.Scalar(Packages.Nfpm, "description").Split('\n')[0]], header);

        var requires = (await Packages.OutputOfAsync("rpm", "-qpR", rpm)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(r => !r.StartsWith("rpmlib(", StringComparison.Ordinal) && r != "/bin/sh").Select(r => r.Trim());
        Assert.Equal(Packages.List("overrides", "rpm", "depends").Order(StringComparer.Ordinal), requires.Order(StringComparer.Ordinal));

        // path, mode, owner, group, flags (c = %config, n = noreplace)
        var files = (await Packages.OutputOfAsync("rpm", "-qp", "--queryformat", "[%{FILENAMES}|%{FILEMODES:perms}|%{FILEUSERNAME}|%{FILEGROUPNAME}|%{FILEFLAGS:fflags}|%{FILESIZES}\n]", rpm))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToDictionary(f => f[0]);
        var contents = Packages.Contents();
        foreach (var p in contents)
        {
            Assert.True(files.TryGetValue(p.Destination, out var f), $"{p.Destination} is not in the .rpm; it holds: {string.Join(", ", files.Keys)}");
            Assert.Equal((p.IsDirectory ? "d" : "-") + Packages.Permissions(p.Mode), f[1]);
            Assert.Equal(["root", "root"], f[2..4]);
            // rpmbuild marks what it installs under /usr/share/doc as documentation (%doc, "d")
            var doc = p.Destination.StartsWith("/usr/share/doc/", StringComparison.Ordinal) ? "d" : "";
            Assert.Equal(p.Type == "config|noreplace" ? "cn" : p.IsConfig ? "c" : doc, f[4]);
            if (!p.IsDirectory) Assert.Equal(new FileInfo(p.Source!).Length.ToString(System.Globalization.CultureInfo.InvariantCulture), f[5]);
        }
        Assert.Equal(contents.Where(p => !p.IsDirectory).Select(p => p.Destination).Order(StringComparer.Ordinal),
            files.Values.Where(f => !f[1].StartsWith('d')).Select(f => f[0]).Order(StringComparer.Ordinal));

        var scriptText = await Packages.OutputOfAsync("rpm", "-qp", "--scripts", rpm);
        foreach (var (nfpmName, rpmName) in new[] { ("postinstall", "postinstall"), ("preremove", "preuninstall"), ("postremove", "postuninstall") })
        {
            var text = Packages.Scripts()[nfpmName];
            Assert.Contains($"{rpmName} scriptlet (using /bin/sh):\n{text}", scriptText);
        }
    }

    private sealed class TempControlDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("crsc-deb-control-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
