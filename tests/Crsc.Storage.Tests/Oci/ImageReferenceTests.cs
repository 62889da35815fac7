using Crsc.Storage.Oci;

namespace Crsc.Storage.Tests.Oci;

/// <summary>Image references as containerd, CRI-O and the kubelet parse them (distribution/reference's grammar).</summary>
public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("crsc", null, "crsc", null, null)]
    [InlineData("crsc:0.1.0", null, "crsc", "0.1.0", null)]
    [InlineData("localhost/crsc:0.1.0", "localhost", "crsc", "0.1.0", null)]
    [InlineData("ghcr.io/crsc-io/crsc:0.1.0", "ghcr.io", "crsc-io/crsc", "0.1.0", null)]
    [InlineData("127.0.0.1:5000/crsc-sandbox/busybox:1", "127.0.0.1:5000", "crsc-sandbox/busybox", "1", null)]
    [InlineData("registry.example:5000/team/crsc", "registry.example:5000", "team/crsc", null, null)]
    [InlineData("[::1]:5000/crsc:1", "[::1]:5000", "crsc", "1", null)]
    [InlineData("library/crsc", null, "library/crsc", null, null)]
    [InlineData("my_org/crsc__x.y-z:V1_0.rc-1", null, "my_org/crsc__x.y-z", "V1_0.rc-1", null)]
    [InlineData("localhost/crsc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "localhost", "crsc", null,
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("localhost/crsc:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "localhost", "crsc", "0.1.0",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Valid_references_are_split_as_runtimes_split_them(string value, string? domain, string path, string? tag, string? digest)
    {
        Assert.True(ImageReference.TryParse(value, out var reference, out var problem), problem);
        Assert.Equal(new ImageReference(domain, path, tag, digest), reference);
        Assert.Equal(value, reference.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("https://ghcr.io/crsc-io/crsc:0.1.0", "URL scheme")]
    [InlineData("crsc 0.1.0", "white space")]
    [InlineData("Crsc:0.1.0", "repository 'Crsc' must be lower-case")]
    [InlineData("ghcr.io/crsc-io/Crsc:0.1.0", "repository 'crsc-io/Crsc' must be lower-case")]
    [InlineData("crsc:", "tag ''")]
    [InlineData("crsc:-rc1", "tag '-rc1'")]
    [InlineData("crsc:a/b", "'crsc:a' is not a registry host")]
    [InlineData("crsc@sha256:abc", "'sha256:abc' is not a digest")]
    [InlineData(":0.1.0", "no repository name")]
    [InlineData("localhost/:1", "repository ''")]
    [InlineData("crsc//x", "repository 'crsc//x'")]
    [InlineData("bad_host.example:99999999/crsc", "not a registry host")]
    public void Invalid_references_are_refused_with_what_is_wrong(string value, string expected)
    {
        Assert.False(ImageReference.TryParse(value, out _, out var problem));
        Assert.Contains(expected, problem);
        var e = Assert.Throws<FormatException>(() => ImageReference.Parse(value));
        Assert.Contains($"'{value}'", e.Message);
    }

    [Fact]
    public void A_name_longer_than_255_characters_is_refused()
    {
        Assert.False(ImageReference.TryParse("localhost/" + new string('a', 250) + ":1", out _, out var problem));
        Assert.Contains("longer than 255", problem);
    }
}
