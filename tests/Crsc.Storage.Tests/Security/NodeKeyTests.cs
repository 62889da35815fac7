using Crsc.Storage.Security;
using Crsc.Testing;

namespace Crsc.Storage.Tests.Security;

public sealed class NodeKeyTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public void The_first_start_creates_a_0600_key_in_a_0700_directory_and_later_starts_read_the_same_key()
    {
        var path = NodeKey.PathIn(_dir.Combine("state"));
        var first = NodeKey.LoadOrCreate(path, out var created);
        Assert.True(created);
        Assert.Equal(Private, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        Assert.Matches("^[0-9a-f]{64}\n\\z", File.ReadAllText(path));
        Assert.Single(Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!)); // no temp file left

        var again = NodeKey.LoadOrCreate(path, out created);
        Assert.False(created);
        Assert.Equal(first.Id, again.Id);
        Assert.Equal(first.Derive("x"), again.Derive("x"));
        Assert.NotEqual(first.Id, NodeKey.Generate().Id);
    }

    [Fact]
    public void Derived_keys_differ_per_purpose()
    {
        var key = NodeKey.Generate();
        Assert.NotEqual(key.Derive("crsc archive mac v1"), key.Derive("crsc image pull token v1"));
        Assert.Equal(32, key.Derive("a").Length);
    }

    [Theory]
    [InlineData(0b110_100_000)]
    [InlineData(0b110_000_100)]
    [InlineData(0b110_110_110)]
    public void A_key_file_others_can_read_is_refused_and_left_as_it_is(int mode)
    {
        var path = NodeKey.PathIn(_dir.Combine("state"));
        NodeKey.LoadOrCreate(path, out _);
        var text = File.ReadAllText(path);
        File.SetUnixFileMode(path, (UnixFileMode)mode);

        var e = Assert.Throws<SecretFileException>(() => NodeKey.LoadOrCreate(path, out _));
        Assert.Contains("accessible by group or others", e.Message);
        Assert.Contains(path, e.Message);
        Assert.Equal((UnixFileMode)mode, File.GetUnixFileMode(path));
        Assert.Equal(text, File.ReadAllText(path));
    }

    [Fact]
    public void A_key_file_that_is_a_symlink_is_refused_and_its_target_never_read()
    {
        var dir = _dir.Combine("state", NodeKey.DirectoryName);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var target = _dir.Combine("elsewhere.key");
        File.WriteAllText(target, NodeKey.Generate().ToText());
        File.SetUnixFileMode(target, Private);
        var path = Path.Combine(dir, NodeKey.FileName);
        File.CreateSymbolicLink(path, target);

        var e = Assert.Throws<SecretFileException>(() => NodeKey.LoadOrCreate(path, out _));
        Assert.Contains("symbolic link", e.Message);
        Assert.True(new FileInfo(path).LinkTarget is not null); // still the link, not replaced
    }

    [Fact]
    public void A_key_file_owned_by_another_user_is_refused()
    {
        var path = NodeKey.PathIn(_dir.Combine("state"));
        NodeKey.LoadOrCreate(path, out _);
        Assert.Equal(0, Chown(path, 65534, 65534));
        var e = Assert.Throws<SecretFileException>(() => NodeKey.Load(path));
        Assert.Contains("owned by uid 65534", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not a key\n")]
    [InlineData("0123")]
    public void A_file_that_is_not_a_key_is_refused_with_its_path(string content)
    {
        var path = NodeKey.PathIn(_dir.Combine("state"));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, Private);
        var e = Assert.Throws<SecretFileException>(() => NodeKey.LoadOrCreate(path, out _));
        Assert.Contains("does not hold a crsc key", e.Message);
        Assert.Equal(content, File.ReadAllText(path));
    }

    [Fact]
    public void A_huge_file_at_the_key_path_is_refused_without_reading_it()
    {
        var path = _dir.Combine("big.key");
        using (var f = File.Create(path)) f.SetLength(1L << 30);
        File.SetUnixFileMode(path, Private);
        var e = Assert.Throws<SecretFileException>(() => NodeKey.Load(path));
        Assert.Contains("more than the 256", e.Message);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown(string path, uint owner, uint group);
}

public sealed class PullTokenTests
{
    private const string Repo = "crsc/shop/cart/cart";
    private readonly ManualTimeProvider _time = new(DateTimeOffset.Parse("2026-12-01T00:00:00Z"));

    [Fact]
    public void A_token_opens_its_repository_until_it_expires()
    {
        var tokens = new PullTokens(NodeKey.Generate(), _time);
        var token = tokens.Mint(Repo, TimeSpan.FromMinutes(10));
        Assert.StartsWith(PullTokens.Prefix, token);
        Assert.Equal(PullTokenVerdict.Valid, tokens.Check(token, Repo));
        Assert.Equal(PullTokenVerdict.Valid, tokens.Check(token, null));
        Assert.Equal(Repo, tokens.RepositoryOf(token));
        _time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(PullTokenVerdict.Valid, tokens.Check(token, Repo));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(PullTokenVerdict.Expired, tokens.Check(token, Repo));
    }

    [Theory]
    [InlineData("crsc/shop/cart/other")]
    [InlineData("crsc/shop/cart/cart2")]
    [InlineData("crsc/shop/cart/car")]
    [InlineData("crsc/bank/cart/cart")]
    public void A_token_does_not_open_another_repository(string other)
    {
        var tokens = new PullTokens(NodeKey.Generate(), _time);
        Assert.Equal(PullTokenVerdict.OtherRepository, tokens.Check(tokens.Mint(Repo), other));
    }

    [Fact]
    public void A_token_from_another_key_or_tampered_with_is_refused()
    {
        var tokens = new PullTokens(NodeKey.Generate(), _time);
        var foreign = new PullTokens(NodeKey.Generate(), _time).Mint(Repo);
        Assert.Equal(PullTokenVerdict.BadSignature, tokens.Check(foreign, Repo));

        var token = tokens.Mint(Repo);
        var parts = token[PullTokens.Prefix.Length..].Split('.');
        // the same MAC with a payload naming another repository or a later expiry
        var payload = System.Buffers.Text.Base64Url.DecodeFromChars(parts[0]);
        payload[^1] ^= 1;
        Assert.Equal(PullTokenVerdict.BadSignature,
            tokens.Check(PullTokens.Prefix + System.Buffers.Text.Base64Url.EncodeToString(payload) + "." + parts[1], null));
        payload[^1] ^= 1;
        payload[7] ^= 0x40;
        Assert.Equal(PullTokenVerdict.BadSignature,
            tokens.Check(PullTokens.Prefix + System.Buffers.Text.Base64Url.EncodeToString(payload) + "." + parts[1], null));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("crsc1.")]
    [InlineData("crsc1..")]
    [InlineData("crsc1.a.b.c")]
    [InlineData("crsc1.!!!.abc")]
    [InlineData("Bearer crsc1.abc.def")]
    [InlineData("crsc2.AAAAAAAAAAAAAAAAAAAAAAAA.AAAA")]
    public void Garbage_is_malformed_not_an_exception(string? token)
    {
        var tokens = new PullTokens(NodeKey.Generate(), _time);
        Assert.Equal(PullTokenVerdict.Malformed, tokens.Check(token, Repo));
        Assert.Equal(PullTokenVerdict.Malformed, tokens.Check(new string('A', 5000), Repo));
    }

    [Fact]
    public void Lifetimes_outside_the_bounds_are_refused()
    {
        var tokens = new PullTokens(NodeKey.Generate(), _time);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokens.Mint(Repo, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokens.Mint(Repo, TimeSpan.FromDays(2)));
    }
}
