using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace Crsc.Logging;

/// <summary>
/// Gives a property back the name its message template uses. <c>[LoggerMessage]</c> names a message's properties after
/// the template's holes (<c>{Workload}</c> → <c>Workload</c>), except for a parameter that is a C# keyword escaped
/// with <c>@</c> (<c>string @namespace</c> for <c>{Namespace}</c>): that one it names <c>@namespace</c>, which
/// Serilog's Microsoft.Extensions.Logging bridge reads as "destructure" and turns into <c>namespace</c>. The hole
/// then finds nothing and every sink prints it as it is ("Ingested checkpoint … of {Namespace}/web/app"). A property
/// whose name differs from a hole's only in case is renamed to the hole's name; it is the message's own value, so it
/// replaces a scope's property of that name (the bridge gives a message's properties precedence over its scopes').
/// </summary>
public sealed class TemplatePropertyNames : ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        List<(string From, string To)>? renames = null;
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is not PropertyToken hole) continue;
            foreach (var name in logEvent.Properties.Keys)
            {
                if (name.Length == hole.PropertyName.Length && name != hole.PropertyName
                    && string.Equals(name, hole.PropertyName, StringComparison.OrdinalIgnoreCase))
                {
                    (renames ??= []).Add((name, hole.PropertyName));
                    break;
                }
            }
        }
        if (renames is null) return;
        foreach (var (from, to) in renames)
        {
            if (!logEvent.Properties.TryGetValue(from, out var value)) continue; // a hole used twice
            logEvent.RemovePropertyIfPresent(from);
            logEvent.AddOrUpdateProperty(new LogEventProperty(to, value));
        }
    }
}
