namespace Crsc.Kube;

/// <summary>Supplies the bearer token for each request.</summary>
public interface IBearerTokenSource
{
    /// <summary>The token to send now.</summary>
    string GetToken();

    /// <summary>
    /// Called after the server answered 401 to <paramref name="rejected"/>: returns a different token to retry with,
    /// or null when there is none.
    /// </summary>
    string? Refresh(string rejected);
}

/// <summary>A fixed token (kubeconfig <c>token</c>).</summary>
public sealed class StaticTokenSource(string token) : IBearerTokenSource
{
    public string GetToken() => token;
    public string? Refresh(string rejected) => null;
}

/// <summary>
/// A token read from a file (kubeconfig <c>tokenFile</c>, the in-cluster service account token). The kubelet rotates
/// that file; it is read again when its size or modification time changes, at least every
/// <see cref="MaxAge"/>, and at once after a 401.
/// </summary>
public sealed class FileTokenSource : IBearerTokenSource
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private string _token = "";
    private DateTime _writeTime;
    private long _length = -1;
    private DateTimeOffset _readAt;

    public FileTokenSource(string path, TimeProvider? time = null)
    {
        Path = path;
        _time = time ?? TimeProvider.System;
        Reload();
    }

    public string Path { get; }

    /// <summary>The longest a token read from the file is used without reading it again.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromMinutes(1);

    public string GetToken()
    {
        lock (_gate)
        {
            var info = new FileInfo(Path);
            var changed = !info.Exists || info.LastWriteTimeUtc != _writeTime || info.Length != _length;
            if (changed || _time.GetUtcNow() - _readAt >= MaxAge) ReloadLocked();
            return _token;
        }
    }

    public string? Refresh(string rejected)
    {
        lock (_gate)
        {
            ReloadLocked();
            return _token != rejected && _token.Length > 0 ? _token : null;
        }
    }

    private void Reload() { lock (_gate) ReloadLocked(); }

    private void ReloadLocked()
    {
        try
        {
            var info = new FileInfo(Path);
            var text = File.ReadAllText(Path).Trim();
            _writeTime = info.LastWriteTimeUtc;
            _length = info.Length;
            _readAt = _time.GetUtcNow();
            if (text.Length > 0) _token = text;
            else if (_token.Length == 0) throw new KubeConfigException($"{Path}: the token file is empty");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // keep the previous token (a rotation replaces the file atomically; a read may race it)
            if (_token.Length == 0) throw new KubeConfigException($"{Path}: cannot read the token file: {e.Message}", e);
        }
    }
}
