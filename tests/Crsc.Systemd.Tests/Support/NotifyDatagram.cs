namespace Crsc.Systemd.Tests.Support;

internal static class NotifyDatagram
{
    /// <summary>sd_notify's format: newline-separated KEY=VALUE, as systemd splits it.</summary>
    public static Dictionary<string, string> Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            Assert.True(eq > 0, $"not KEY=VALUE: '{line}'");
            Assert.True(fields.TryAdd(line[..eq], line[(eq + 1)..]), $"duplicate key in '{text}'");
        }
        return fields;
    }

    public static async Task<Dictionary<string, string>> ReceiveNotifyAsync(this DatagramReceiver receiver, string what)
    {
        using var datagram = await receiver.ReceiveAsync(what);
        Assert.Empty(datagram.Fds);
        return Parse(datagram.Text);
    }
}
