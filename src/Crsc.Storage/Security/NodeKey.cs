using System.Security.Cryptography;
using System.Text;

namespace Crsc.Storage.Security;

/// <summary>
/// The secret crsc authenticates what it writes and serves with: 32 random bytes, kept as 64 hex digits in
/// <c>&lt;stateDir&gt;/keys/node.key</c> (0600 in a 0700 directory, created on first start). Node agents that restore
/// each other's checkpoints share one key (<c>security.keySecret</c>). Every use gets its own key derived with HKDF, so a
/// MAC of a manifest can never pass for a pull token or the other way round.
/// </summary>
public sealed class NodeKey
{
    public const string DirectoryName = "keys";
    public const string FileName = "node.key";
    private const int Length = 32;
    private readonly byte[] _secret;

    private NodeKey(byte[] secret)
    {
        _secret = secret;
        Id = Convert.ToHexStringLower(SHA256.HashData(Derive("crsc key id v1")))[..16];
    }

    /// <summary>A short public name of the key (a hash of a derived key): tells which key signed something.</summary>
    public string Id { get; }

    /// <summary>Whether <paramref name="value"/> has the shape of an <see cref="Id"/> (16 lower-case hex digits).</summary>
    public static bool IsId(string? value) => value is { Length: 16 } && !value.AsSpan().ContainsAnyExcept("0123456789abcdef");

    /// <summary>Where the key lives under <paramref name="stateDir"/>.</summary>
    public static string PathIn(string stateDir) => System.IO.Path.Combine(stateDir, DirectoryName, FileName);

    /// <summary>A key from its text form (64 hex digits, surrounding whitespace ignored).</summary>
    /// <exception cref="FormatException">not 64 hex digits, naming <paramref name="source"/></exception>
    public static NodeKey Parse(string text, string source)
    {
        var t = text.Trim();
        if (t.Length != 2 * Length || t.AsSpan().ContainsAnyExcept("0123456789abcdefABCDEF"))
            throw new FormatException($"{source} does not hold a crsc key (64 hex digits)");
        return new NodeKey(Convert.FromHexString(t));
    }

    /// <summary>A new random key (not stored).</summary>
    public static NodeKey Generate() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>The key as stored: 64 lower-case hex digits and a newline.</summary>
    public string ToText() => Convert.ToHexStringLower(_secret) + "\n";

    /// <summary>The key at <paramref name="path"/>; it must exist and be private to crsc's user.</summary>
    /// <exception cref="SecretFileException">missing, a link, foreign, too open, or not a key</exception>
    public static NodeKey Load(string path)
    {
        var bytes = SecretFile.Read(path, 256, "crsc's key");
        try { return Parse(Encoding.ASCII.GetString(bytes), path); }
        catch (FormatException) { throw new SecretFileException(path, "does not hold a crsc key (64 hex digits)"); }
    }

    /// <summary>
    /// The key at <paramref name="path"/>, created (0600, its directory 0700) when there is none. Two processes starting
    /// at once end up with the same key: the file appears whole or not at all, and the loser reads the winner's.
    /// </summary>
    public static NodeKey LoadOrCreate(string path, out bool created)
    {
        created = false;
        var dir = System.IO.Path.GetDirectoryName(path) ?? throw new ArgumentException($"'{path}' has no directory", nameof(path));
        PrivateDirectory.Ensure(dir);
        try { return Load(path); }
        catch (SecretFileException e) when (e.Problem == "does not exist") { }
        var key = Generate();
        Store(key, path);
        created = true;
        return Load(path);
    }

    /// <summary>Writes <paramref name="key"/> to <paramref name="path"/> unless a key is there already (then that one stays).</summary>
    public static void Store(NodeKey key, string path)
    {
        var dir = System.IO.Path.GetDirectoryName(path)!;
        var temp = System.IO.Path.Combine(dir, $".{FileName}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            using (var handle = Native.OpenOrCreateNoFollow(temp))
            using (var stream = new FileStream(handle, FileAccess.ReadWrite, bufferSize: 0))
            {
                stream.Write(Encoding.ASCII.GetBytes(key.ToText()));
                stream.Flush(flushToDisk: true);
            }
            try { File.Move(temp, path, overwrite: false); }
            catch (IOException) when (File.Exists(path) || Directory.Exists(path)) { } // another start won: keep theirs
            Native.FSyncDirectory(dir);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>A 32-byte key for one <paramref name="purpose"/> (HKDF-SHA256 with the purpose as info).</summary>
    public byte[] Derive(string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _secret, 32, salt: null, info: Encoding.UTF8.GetBytes(purpose));
}
