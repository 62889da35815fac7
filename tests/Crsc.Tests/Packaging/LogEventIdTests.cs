using System.Text.RegularExpressions;

namespace Crsc.Tests.Packaging;

/// <summary>
/// Every log message of crsc has its own event id, in one range per project (journald's and JSON's <c>EventId</c>
/// then name the message without its text): Api 10000s, Controllers 20000s, Cri 30000s, Kube 40000s, Storage 50000s,
/// Systemd 60000s, the daemon and CLI 70000s; each class that logs takes a block of 100 in it.
/// </summary>
public sealed partial class LogEventIdTests
{
    private static readonly Dictionary<string, int> Ranges = new(StringComparer.Ordinal)
    {
        ["Crsc.Api"] = 10000, ["Crsc.Controllers"] = 20000, ["Crsc.Cri"] = 30000, ["Crsc.Kube"] = 40000,
        ["Crsc.Storage"] = 50000, ["Crsc.Systemd"] = 60000, ["Crsc"] = 70000,
    };

    [GeneratedRegex(@"\[LoggerMessage\((?:EventId = )?(\d+)")]
    private static partial Regex EventId();

    [Fact]
    public void Every_log_message_has_an_event_id_of_its_own_in_its_projects_range()
    {
        var seen = new Dictionary<int, string>();
        var count = 0;
        foreach (var project in Directory.GetDirectories(Repository.File("src")))
        {
            var name = Path.GetFileName(project);
            if (!Ranges.TryGetValue(name, out var start)) continue;
            foreach (var file in Directory.EnumerateFiles(project, "*.cs", SearchOption.AllDirectories)
                         .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)))
            {
                var text = File.ReadAllText(file);
                foreach (Match m in EventId().Matches(text))
                {
                    var id = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                    var where = $"{Path.GetRelativePath(Repository.Root, file)}:{text[..m.Index].Count(c => c == '\n') + 1}";
                    Assert.True(id >= start && id < start + 10000, $"{where}: event id {id} is outside {name}'s range {start}-{start + 9999}");
                    Assert.False(seen.TryGetValue(id, out var other), $"{where}: event id {id} is also used at {other}");
                    seen[id] = where;
                    count++;
                }
            }
        }
        Assert.True(count > 100, $"only {count} log messages found: is the source tree there?");
    }
}
