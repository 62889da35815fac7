namespace Crsc.Cri;

/// <summary>
/// A CRI endpoint: a Unix socket, written as <c>unix:///var/run/crio/crio.sock</c>,
/// <c>unix:/run/containerd/containerd.sock</c> or a plain path.
/// </summary>
public sealed record CriEndpoint
{
    public const string Default = "unix:///var/run/crio/crio.sock";

    /// <summary>Absolute path of the socket.</summary>
    public string SocketPath { get; }

    private CriEndpoint(string socketPath) => SocketPath = socketPath;

    /// <summary>The endpoint as the user would write it.</summary>
    public override string ToString() => "unix://" + SocketPath;

    /// <exception cref="FormatException">not a Unix socket endpoint (the message names the value)</exception>
    public static CriEndpoint Parse(string? endpoint)
    {
        if (string.IsNullOrWhiteSpace(endpoint)) endpoint = Default;
        endpoint = endpoint.Trim();
        string path;
        if (endpoint.StartsWith("unix://", StringComparison.Ordinal))
        {
            path = endpoint["unix://".Length..];
            if (!path.StartsWith('/'))
                throw new FormatException($"CRI endpoint '{endpoint}': unix:// must be followed by an absolute path (unix:///path/to/socket)");
        }
        else if (endpoint.StartsWith("unix:", StringComparison.Ordinal))
        {
            path = endpoint["unix:".Length..];
        }
        else if (endpoint.Contains("://", StringComparison.Ordinal))
        {
            throw new FormatException(
                $"CRI endpoint '{endpoint}': only Unix sockets are supported (e.g. unix:///var/run/crio/crio.sock or unix:///run/containerd/containerd.sock)");
        }
        else
        {
            path = endpoint;
        }
        if (path.Length == 0)
            throw new FormatException($"CRI endpoint '{endpoint}' names no socket path");
        if (path.Contains('\0', StringComparison.Ordinal))
            throw new FormatException($"CRI endpoint '{endpoint}' contains a NUL character");
        return new CriEndpoint(Path.GetFullPath(path));
    }

    public static bool TryParse(string? endpoint, out CriEndpoint? result)
    {
        try { result = Parse(endpoint); return true; }
        catch (FormatException) { result = null; return false; }
    }
}
