using System.Text;
using Crsc.Storage.Oci;
using Crsc.Testing;

namespace Crsc.Storage.Tests.Oci;

public sealed class RegistryAuthFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string json, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = _dir.Combine($"auth-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private static string Json(string key, string auth) => "{\"auths\":{\"" + key + "\":{\"auth\":\"" + auth + "\"}}}";

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Auth_field_decodes_to_user_and_password_split_at_the_first_colon()
    {
        var path = Write(Json("registry.example:5000", B64("alice:pa:ss")));
        var c = RegistryAuthFile.Load(path, "registry.example:5000");
        Assert.Equal(new RegistryCredentials("alice", "pa:ss"), c);
        Assert.DoesNotContain("pa:ss", c!.ToString());
    }

    [Fact]
    public void Username_and_password_fields_and_identity_tokens_are_read()
    {
        var path = Write("""
            {"auths":{
              "a.example":{"username":"bob","password":"pw"},
              "b.example":{"auth":"","identitytoken":"refresh-123"}
            }}
            """);
        Assert.Equal(new RegistryCredentials("bob", "pw"), RegistryAuthFile.Load(path, "a.example"));
        Assert.Equal("refresh-123", RegistryAuthFile.Load(path, "b.example")!.IdentityToken);
    }

    [Theory]
    [InlineData("https://Registry.Example:5000/v2/", "registry.example:5000")]
    [InlineData("http://registry.example", "registry.example")]
    [InlineData("https://index.docker.io/v1/", "docker.io")]
    public void Keys_match_by_host_and_port_whatever_their_scheme_path_and_case(string key, string host)
    {
        var path = Write(Json(key, B64("u:p")));
        Assert.NotNull(RegistryAuthFile.Load(path, host));
        Assert.Null(RegistryAuthFile.Load(path, "elsewhere.example"));
    }

    [Fact]
    public void A_file_readable_by_group_is_refused_even_when_valid()
    {
        var path = Write(Json("r.example", B64("u:p")),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var e = Assert.Throws<RegistryAuthFileException>(() => RegistryAuthFile.Load(path, "r.example"));
        Assert.Contains(path, e.Message);
        Assert.Contains("0640", e.Message);
        Assert.Contains("chmod 600", e.Message);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var path = _dir.Combine("none.json");
        var e = Assert.Throws<RegistryAuthFileException>(() => RegistryAuthFile.Load(path, "r.example"));
        Assert.Equal($"registry auth file {path} does not exist", e.Message);
    }

    [Fact]
    public void A_link_to_credentials_is_refused_even_when_its_target_is_private()
    {
        var target = Write(Json("registry.example:5000", B64("alice:pw")));
        var link = _dir.Combine("link.json");
        File.CreateSymbolicLink(link, target);
        var e = Assert.Throws<RegistryAuthFileException>(() => RegistryAuthFile.Load(link, "registry.example:5000"));
        Assert.Contains("symbolic link", e.Message);
        Assert.Equal(link, e.Path);
    }

    [Fact]
    public void Credentials_in_a_file_of_another_user_are_refused_and_the_file_left_alone()
    {
        var path = Write(Json("registry.example:5000", B64("alice:pw")));
        Assert.Equal(0, Chown(path, 65534, 65534)); // the suite runs as root, as the daemon does
        var e = Assert.Throws<RegistryAuthFileException>(() => RegistryAuthFile.Load(path, "registry.example:5000"));
        Assert.Contains("owned by uid 65534", e.Message);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown(string path, uint owner, uint group);
}
