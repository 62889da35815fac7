using System.Text.RegularExpressions;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Tests.Schedules;

public sealed partial class ScheduleNamesTests
{
    private static readonly DateTimeOffset Time = new(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
    private static partial Regex LabelValueSyntax();

    [Fact]
    public void Workload_container_and_utc_time()
    {
        Assert.Equal("web-app-20260304050607", ScheduleNames.CheckpointName("web", "app", Time));
        // the time is UTC whatever the offset given
        Assert.Equal("web-app-20260304050607", ScheduleNames.CheckpointName("web", "app", Time.ToOffset(TimeSpan.FromHours(2))));
        Assert.Equal("web-app-20260304050607-a1b2c3", ScheduleNames.CheckpointName("web", "app", Time, "a1b2c3"));
    }

    [Fact]
    public void Too_long_names_are_cut_with_a_hash_and_stay_valid()
    {
        var workload = string.Join('.', Enumerable.Repeat(new string('w', 60), 4)) + "-x"; // 245 characters, valid
        var a = ScheduleNames.CheckpointName(workload, "postgres", Time);
        var b = ScheduleNames.CheckpointName(workload[..^1] + "y", "postgres", Time);
        foreach (var name in new[] { a, b, ScheduleNames.CheckpointName(workload, "postgres", Time, "a1b2c3") })
        {
            Assert.True(name.Length <= 253, $"{name.Length} characters");
            Assert.Matches(DnsSubdomain(), name);
            Assert.EndsWith("-20260304050607", name.Replace("-a1b2c3", ""));
        }
        Assert.NotEqual(a, b); // same beginning, different workloads: the hash tells them apart
        Assert.StartsWith(new string('w', 60) + ".", a);

        // a cut that would end in '.' or '-' is trimmed back to a letter or digit
        var dotted = new string('d', 228) + "." + new string('e', 20); // the cut falls right after the dot
        var cut = ScheduleNames.CheckpointName(dotted, "c", Time);
        Assert.Matches(DnsSubdomain(), cut);
        Assert.True(cut.Length <= 253);
        Assert.StartsWith(new string('d', 228) + "-", cut);
    }

    [Fact]
    public void Label_values_fit_in_63_characters()
    {
        Assert.Equal("web", ScheduleNames.LabelValue("web"));
        var exact = new string('a', 63);
        Assert.Equal(exact, ScheduleNames.LabelValue(exact));
        var longName = new string('a', 50) + "." + new string('b', 100);
        var value = ScheduleNames.LabelValue(longName);
        Assert.Equal(63, value.Length);
        Assert.Matches(LabelValueSyntax(), value);
        Assert.NotEqual(value, ScheduleNames.LabelValue(longName + "c"));
        Assert.Equal(value, ScheduleNames.LabelValue(longName));
    }
}
