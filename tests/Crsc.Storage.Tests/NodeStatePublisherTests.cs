using System.Text.Json;
using Crsc.Controllers.Nodes;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Tests;

/// <summary>state.json for pods: the fixed contract, 0644, replaced whole; its directory made 0755 only when missing.</summary>
public sealed class NodeStatePublisherTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly DateTimeOffset Since = new(2026, 12, 7, 8, 0, 0, TimeSpan.Zero);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Not_going_away_is_written_with_explicit_nulls_in_the_contracts_order()
    {
        var dir = _dir.Combine("node-state");
        var publisher = new NodeStatePublisher(dir, "node-a", NullLogger.Instance);
        Assert.True(publisher.Publish(NodeAwayState.Staying(Since)));
        Assert.Equal("{\"node\":\"node-a\",\"goingAway\":false,\"reason\":null,\"detail\":null,\"since\":null,\"updated\":\"2026-12-07T08:00:00Z\"}\n",
            File.ReadAllText(Path.Combine(dir, "state.json")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            File.GetUnixFileMode(Path.Combine(dir, "state.json")));
        // created for pods to read, whatever the daemon's umask
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(dir));
    }

    [Fact]
    public void Going_away_names_the_reason_detail_and_since_and_replaces_the_file_whole()
    {
        var dir = _dir.Combine("node-state");
        var publisher = new NodeStatePublisher(dir, "node-a", NullLogger.Instance);
        publisher.Publish(NodeAwayState.Staying(Since));
        publisher.Publish(new NodeAwayState(true, NodeAwayReason.Taint, "taint karpenter.sh/disrupted:NoSchedule", Since, Since.AddSeconds(3)));

        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "state.json")));
        var r = doc.RootElement;
        Assert.Equal(["node", "goingAway", "reason", "detail", "since", "updated"], r.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("node-a", true, "Taint", "taint karpenter.sh/disrupted:NoSchedule", "2026-12-07T08:00:00Z", "2026-12-07T08:00:03Z"),
            (r.GetProperty("node").GetString(), r.GetProperty("goingAway").GetBoolean(), r.GetProperty("reason").GetString(),
                r.GetProperty("detail").GetString(), r.GetProperty("since").GetString(), r.GetProperty("updated").GetString()));
        Assert.Equal(["state.json"], Directory.GetFiles(dir).Select(Path.GetFileName)); // no temp file left
    }

    [Fact]
    public void An_existing_directory_is_never_chmoded()
    {
        var dir = _dir.Combine("node-state");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        new NodeStatePublisher(dir, "node-a", NullLogger.Instance).Publish(NodeAwayState.Staying(Since));
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(dir));
        Assert.True(File.Exists(Path.Combine(dir, "state.json")));
    }

    [Fact]
    public void A_directory_that_cannot_be_made_is_logged_not_thrown()
    {
        var file = _dir.Combine("a-file");
        File.WriteAllText(file, "");
        Assert.False(new NodeStatePublisher(Path.Combine(file, "node-state"), "node-a", NullLogger.Instance).Publish(NodeAwayState.Staying(Since)));
    }
}
