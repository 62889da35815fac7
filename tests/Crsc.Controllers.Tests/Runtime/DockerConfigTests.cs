using System.Text;
using Crsc.Controllers.Runtime;

namespace Crsc.Controllers.Tests.Runtime;

/// <summary>
/// <see cref="DockerConfig"/>: the docker config format, and which entry an image gets, matched as the kubelet matches a
/// pod's imagePullSecrets (pkg/credentialprovider keyring: host labels and port equal, the key's path a prefix of the
/// image's, more specific keys first, Docker Hub's names one registry).
/// </summary>
public sealed class DockerConfigTests
{
    private static DockerConfigEntry Entry(string key) => new(key, new RegistryAuth(Username: "u-" + key, Password: "p"));

    private static string? Match(string image, params string[] keys) =>
        DockerConfig.Matching(keys.Select(Entry), image).FirstOrDefault()?.Key;

    [Theory]
    [InlineData("registry.example.com/team/app:1", "registry.example.com", "registry.example.com")]
    [InlineData("registry.example.com/team/app:1", "https://registry.example.com", "https://registry.example.com")]
    [InlineData("registry.example.com/team/app:1", "http://Registry.Example.com/v2/", "http://Registry.Example.com/v2/")]
    [InlineData("registry.example.com/app@sha256:abc", "registry.example.com", "registry.example.com")]
    // the port is part of the host: equal on both, or absent on both
    [InlineData("registry.example.com:5000/app:1", "registry.example.com:5000", "registry.example.com:5000")]
    [InlineData("registry.example.com:5000/app:1", "registry.example.com", null)]
    [InlineData("registry.example.com/app:1", "registry.example.com:5000", null)]
    [InlineData("registry.example.com:5001/app:1", "registry.example.com:5000", null)]
    // a key with a path applies to the images under it only
    [InlineData("registry.example.com/team/app:1", "registry.example.com/team", "registry.example.com/team")]
    [InlineData("registry.example.com/other/app:1", "registry.example.com/team", null)]
    [InlineData("registry.example.com/team/app:1", "https://registry.example.com/team/", "https://registry.example.com/team/")]
    // another host, a subdomain, or a parent domain is not the registry
    [InlineData("registry.example.com/app:1", "other.example.com", null)]
    [InlineData("eu.registry.example.com/app:1", "registry.example.com", null)]
    [InlineData("example.com/app:1", "registry.example.com", null)]
    // a wildcard label matches one label
    [InlineData("eu.registry.example.com/app:1", "*.registry.example.com", "*.registry.example.com")]
    [InlineData("registry.example.com/app:1", "*.registry.example.com", null)]
    // Docker Hub: an image without a registry host, and every name Docker Hub goes by
    [InlineData("nginx:1.27", "https://index.docker.io/v1/", "https://index.docker.io/v1/")]
    [InlineData("team/app:1", "index.docker.io", "index.docker.io")]
    [InlineData("docker.io/library/nginx:1.27", "https://index.docker.io/v1/", "https://index.docker.io/v1/")]
    [InlineData("index.docker.io/team/app:1", "docker.io", "docker.io")]
    [InlineData("nginx:1.27", "registry-1.docker.io", "registry-1.docker.io")]
    [InlineData("nginx:1.27", "registry.example.com", null)]
    [InlineData("registry.example.com/nginx:1.27", "https://index.docker.io/v1/", null)]
    [InlineData("localhost/app:1", "localhost", "localhost")]
    [InlineData("localhost:5000/app:1", "localhost:5000", "localhost:5000")]
    public void An_image_gets_the_entry_of_its_registry_as_the_kubelet_chooses_it(string image, string key, string? expected) =>
        Assert.Equal(expected, Match(image, key));

    [Fact]
    public void The_most_specific_key_comes_first()
    {
        var keys = new[] { "registry.example.com", "registry.example.com/team", "registry.example.com/team/app", "other.example.com" };
        Assert.Equal(["registry.example.com/team/app", "registry.example.com/team", "registry.example.com"],
            DockerConfig.Matching(keys.Select(Entry), "registry.example.com/team/app:1").Select(e => e.Key));
    }

    [Theory]
    [InlineData("registry.example.com/team/app:1", "registry.example.com")]
    [InlineData("registry.example.com:5000/app", "registry.example.com:5000")]
    [InlineData("nginx", "docker.io")]
    [InlineData("index.docker.io/library/nginx", "docker.io")]
    public void The_registry_of_an_image(string image, string registry) => Assert.Equal(registry, DockerConfig.RegistryOf(image));

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Both_formats_are_read_and_auth_splits_at_the_first_colon()
    {
        var auths = DockerConfig.Parse(Encoding.UTF8.GetBytes("{\"auths\":{\"r.example\":{\"auth\":\"" + B64("alice:pa:ss") + "\"}}}"));
        var legacy = DockerConfig.Parse(Encoding.UTF8.GetBytes("""{"r.example":{"username":"bob","password":"pw","email":"b@example"}}"""),
            DockerConfigFormat.Legacy);

        Assert.Equal(new[] { new DockerConfigEntry("r.example", new RegistryAuth(Username: "alice", Password: "pa:ss")) }, auths);
        Assert.Equal(new[] { new DockerConfigEntry("r.example", new RegistryAuth(Username: "bob", Password: "pw")) }, legacy);
    }

    [Theory]
    [InlineData("""{"r.example":{"auth":"dTpw"}}""", DockerConfigFormat.Auths, "has no \"auths\" object")]
    [InlineData("""{"auths":{"r.example":{"auth":"not base64!"}}}""", DockerConfigFormat.Auths, "entry \"r.example\": \"auth\" is not base64")]
    [InlineData("""{"auths":{"r.example":{"email":"x"}}}""", DockerConfigFormat.Auths, "entry \"r.example\" has neither")]
    [InlineData("""["r.example"]""", DockerConfigFormat.Legacy, "is not a JSON object")]
    [InlineData("""{"auths":""", DockerConfigFormat.Auths, "is not valid JSON")]
    public void A_malformed_document_says_what_is_wrong(string json, DockerConfigFormat format, string problem)
    {
        var e = Assert.Throws<DockerConfigException>(() => DockerConfig.Parse(Encoding.UTF8.GetBytes(json), format));
        Assert.StartsWith(problem, e.Problem);
    }

    [Fact]
    public void Credentials_never_show_their_secrets()
    {
        var auth = new RegistryAuth(Username: "alice", Password: "s3cret-pw", Auth: B64("alice:s3cret-pw"));
        var token = new RegistryAuth(Username: "alice", Password: "s3cret-pw", IdentityToken: "s3cret-token");

        Assert.Equal("user 'alice'", auth.ToString());
        Assert.DoesNotContain("s3cret", new DockerConfigEntry("r.example", token).ToString());
        Assert.DoesNotContain("s3cret", token.ToString());
    }
}
