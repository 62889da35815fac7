using System.Text.Json;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests.Security;

/// <summary>
/// Manifest format 3 records why a checkpoint was taken (NodeDrain, NodeShutdown), covered by the MAC; a manifest
/// without a reason is still written as format 2.
/// </summary>
public sealed class ManifestReasonTests : IDisposable
{
    private readonly StoreFixture _f = new();
    private readonly DiskCheckpointStore _store;

    public ManifestReasonTests() => _store = _f.Open();

    public void Dispose()
    {
        _store.Dispose();
        _f.Dispose();
    }

    private async Task<CheckpointInfo> IngestAsync(string? reason)
    {
        var archive = new TestArchive();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        return await _store.IngestAsync(_f.Stage(archive), archive.Source() with { Reason = reason }, IngestOptions.Default, null,
            CancellationToken.None);
    }

    [Fact]
    public async Task The_reason_is_written_as_format_3_and_read_back_Verified()
    {
        var c = await IngestAsync(CheckpointReasons.NodeDrain);

        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(StoreFixture.ManifestPath(c)));
        Assert.Equal(3, json.RootElement.GetProperty("formatVersion").GetInt32());
        Assert.Equal("NodeDrain", json.RootElement.GetProperty("reason").GetString());
        Assert.Equal(("NodeDrain", CheckpointAuthenticity.Verified), (_store.Get(c.Id)!.Reason, _store.Get(c.Id)!.Authenticity));
        var readOnly = new ReadOnlyCheckpointStore(_f.Checkpoints, _f.Key).Get(c.Id)!;
        Assert.Equal(("NodeDrain", CheckpointAuthenticity.Verified), (readOnly.Reason, readOnly.Authenticity));
    }

    [Fact]
    public async Task Without_a_reason_the_manifest_stays_format_2()
    {
        var c = await IngestAsync(null);
        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(StoreFixture.ManifestPath(c)));
        Assert.Equal(2, json.RootElement.GetProperty("formatVersion").GetInt32());
        Assert.Equal(((string?)null, CheckpointAuthenticity.Verified), (_store.Get(c.Id)!.Reason, _store.Get(c.Id)!.Authenticity));
    }

    [Fact]
    public async Task A_changed_reason_makes_the_manifest_Invalid()
    {
        var c = await IngestAsync(CheckpointReasons.NodeShutdown);
        StoreFixture.EditManifest(c, json =>
        {
            var changed = json.Replace("\"reason\": \"NodeShutdown\"", "\"reason\": \"NodeDrain\"", StringComparison.Ordinal);
            Assert.NotEqual(json, changed);
            return changed;
        });
        Assert.Equal(CheckpointAuthenticity.Invalid, _store.Get(c.Id)!.Authenticity);
    }

    [Fact]
    public async Task A_reason_added_to_a_format_2_manifest_is_not_read()
    {
        var c = await IngestAsync(null);
        StoreFixture.EditManifest(c, json => json.Replace("\"formatVersion\": 2,", "\"formatVersion\": 2, \"reason\": \"NodeDrain\",", StringComparison.Ordinal));
        var read = _store.Get(c.Id)!;
        Assert.Null(read.Reason);
    }

    [Theory]
    [InlineData("nodeDrain")]
    [InlineData("Node-Drain")]
    [InlineData("../x")]
    public async Task A_reason_that_is_not_an_UpperCamelCase_word_is_refused(string reason)
    {
        await Assert.ThrowsAsync<InvalidCheckpointNameException>(() => IngestAsync(reason));
    }
}
