using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Tests.Support;

/// <summary>Keeps every log entry with the scopes active when it was written.</summary>
public sealed class RecordingLogger : ILogger
{
    private readonly AsyncLocal<ScopeNode?> _scope = new();

    public ConcurrentQueue<Entry> Entries { get; } = new();

    public IDisposable BeginScope<TState>(TState state) where TState : notnull
    {
        var node = new ScopeNode(state, _scope.Value);
        _scope.Value = node;
        return new Pop(this, node);
    }

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter)
    {
        var scopes = new List<object>();
        for (var n = _scope.Value; n is not null; n = n.Parent) scopes.Add(n.State);
        Entries.Enqueue(new Entry(logLevel, formatter(state, exception), exception, scopes));
    }

    public sealed record Entry(LogLevel Level, string Message, Exception? Exception, IReadOnlyList<object> Scopes);

    private sealed record ScopeNode(object State, ScopeNode? Parent);

    private sealed class Pop(RecordingLogger owner, ScopeNode node) : IDisposable
    {
        public void Dispose() => owner._scope.Value = node.Parent;
    }
}
