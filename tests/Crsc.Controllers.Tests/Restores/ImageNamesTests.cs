using Crsc.Controllers.Restores;

namespace Crsc.Controllers.Tests.Restores;

public sealed class ImageNamesTests
{
    [Theory]
    [InlineData("nginx", "docker.io/library/nginx:latest")]
    [InlineData("nginx:1.27", "docker.io/library/nginx:1.27")]
    [InlineData("library/nginx", "docker.io/library/nginx:latest")]
    [InlineData("index.docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7")]
    [InlineData("bitnami/redis", "docker.io/bitnami/redis:latest")]
    [InlineData("localhost/app", "localhost/app:latest")]
    [InlineData("registry.local:5000/team/app:2", "registry.local:5000/team/app:2")]
    [InlineData("10.0.0.1:5055/shop/counter@sha256:abc", "10.0.0.1:5055/shop/counter@sha256:abc")]
    [InlineData(" quay.io/app ", "quay.io/app:latest")]
    public void Normalizes_like_a_runtime(string image, string expected) => Assert.Equal(expected, ImageNames.Normalize(image));

    [Theory]
    [InlineData("nginx", "docker.io/library/nginx:latest", true)]
    [InlineData("registry.local/counter:1", "registry.local/counter:1", true)]
    [InlineData("registry.local/counter:1", "registry.local/counter:2", false)]
    [InlineData("registry.local/counter:1@sha256:aa", "registry.local/counter@sha256:aa", true)]
    [InlineData("registry.local/counter@sha256:aa", "registry.local/counter@sha256:bb", false)]
    [InlineData("registry.local/counter:1", "other.local/counter:1", false)]
    [InlineData("registry.local/counter:1", null, false)]
    [InlineData("", "", false)]
    public void Same_compares_normalized_names_and_digests(string? a, string? b, bool same) => Assert.Equal(same, ImageNames.Same(a, b));
}
