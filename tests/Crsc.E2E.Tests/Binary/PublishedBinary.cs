using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Crsc.E2E.Tests.Binary;

/// <summary>
/// The Native AOT <c>crsc</c> binary under test: <c>$CRSC_BINARY</c> when set (CI publishes it once with
/// <c>make publish</c>), otherwise published here once per test run; and <c>crsc-interceptor</c>, the sidecar's
/// small binary, beside it (<c>make publish</c> writes both to bin/).
/// </summary>
public sealed class PublishedBinary
{
    private static readonly Lazy<string> Path_ = new(Locate, LazyThreadSafetyMode.ExecutionAndPublication);
    public static string Path => Path_.Value;
    private static readonly Lazy<string> InterceptorPath_ = new(LocateInterceptor, LazyThreadSafetyMode.ExecutionAndPublication);
    /// <summary><c>crsc-interceptor</c> beside <see cref="Path"/>.</summary>
    public static string InterceptorPath => InterceptorPath_.Value;
    private static readonly string PublishDirectory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crsc-e2e-publish");

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "crsc.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("crsc.sln not found above " + AppContext.BaseDirectory);
        }
    }

    private static string Locate()
    {
        var given = Environment.GetEnvironmentVariable("CRSC_BINARY");
        if (!string.IsNullOrEmpty(given))
        {
            if (!File.Exists(given)) throw new FileNotFoundException($"CRSC_BINARY={given} does not exist");
            return System.IO.Path.GetFullPath(given);
        }
        return Publish("src/Crsc/Crsc.csproj", "crsc");
    }

    private static string LocateInterceptor()
    {
        var beside = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, "crsc-interceptor");
        if (File.Exists(beside)) return beside;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CRSC_BINARY")))
            throw new FileNotFoundException($"there is no crsc-interceptor beside CRSC_BINARY={Path} (make publish builds both)", beside);
        return Publish("src/Crsc.InterceptorHost/Crsc.InterceptorHost.csproj", "crsc-interceptor");
    }

    private static string Publish(string project, string binary)
    {
        var psi = new ProcessStartInfo("dotnet",
            ["publish", System.IO.Path.Combine(RepoRoot, project), "-r", "linux-x64", "-c", "Release",
             "-o", PublishDirectory, "-nodeReuse:false", "--artifacts-path", System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crsc-e2e-artifacts")])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"dotnet publish failed ({p.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        return System.IO.Path.Combine(PublishDirectory, binary);
    }

    public static async Task<(int Code, string Out, string Err)> RunAsync(string[] args, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
        => await RunAsync(Start(args, env), timeout);

    /// <summary>Runs <see cref="InterceptorPath"/> with <paramref name="args"/> to its end.</summary>
    public static async Task<(int Code, string Out, string Err)> RunInterceptorAsync(string[] args, TimeSpan? timeout = null)
        => await RunAsync(StartInterceptor(args), timeout);

    private static async Task<(int Code, string Out, string Err)> RunAsync(ProcessStartInfo psi, TimeSpan? timeout)
    {
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    public static ProcessStartInfo Start(string[] args, IDictionary<string, string>? env = null) => StartOf(Path, args, env);

    /// <summary>How to start <see cref="InterceptorPath"/> with <paramref name="args"/>, in the same clean environment.</summary>
    public static ProcessStartInfo StartInterceptor(string[] args) => StartOf(InterceptorPath, args, null);

    private static ProcessStartInfo StartOf(string binary, string[] args, IDictionary<string, string>? env)
    {
        var psi = new ProcessStartInfo(binary, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // a clean environment: nothing of the test runner's systemd/kube context leaks in
        foreach (var name in new[] { "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM", "KUBECONFIG",
                     "CRSC_KUBECONFIG", "KUBERNETES_SERVICE_HOST", "CRSC_CONFIG", "CRSC_SOCKET" })
            psi.Environment.Remove(name);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>An HttpClient that talks HTTP/1.1 over the daemon's Unix socket.</summary>
    public static HttpClient UnixHttpClient(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try { await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct); }
            catch { s.Dispose(); throw; }
            return new NetworkStream(s, ownsSocket: true);
        },
    })
    { BaseAddress = new Uri("http://crsc.local"), Timeout = TimeSpan.FromSeconds(10) };
}

/// <summary>A Unix datagram socket standing in for systemd's NOTIFY_SOCKET; collects what the daemon sends.</summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly List<string> _messages = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;

    public string Path { get; }

    public NotifySocket(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _reader = Task.Run(ReadLoop);
    }

    private async Task ReadLoop()
    {
        var buffer = new byte[64 * 1024];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                lock (_messages) _messages.Add(Encoding.UTF8.GetString(buffer, 0, n));
            }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { return; }
        }
    }

    public IReadOnlyList<string> Messages { get { lock (_messages) return [.. _messages]; } }

    /// <summary>Every KEY=VALUE line of every datagram, in order.</summary>
    public IReadOnlyList<string> Lines => Messages.SelectMany(m => m.Split('\n', StringSplitOptions.RemoveEmptyEntries)).ToList();

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { _reader.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        try { File.Delete(Path); } catch (IOException) { }
    }
}
