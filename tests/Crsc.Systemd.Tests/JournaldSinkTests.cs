using System.ComponentModel;
using System.Text;
using Crsc.Systemd.Journal;
using Crsc.Systemd.Tests.Support;
using Crsc.Testing;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;
using Serilog.Extensions.Logging;

namespace Crsc.Systemd.Tests;

public sealed class JournaldSinkTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly DatagramReceiver _journal;

    public JournaldSinkTests() => _journal = DatagramReceiver.BindPath(_dir.Combine("journal.socket"));

    public void Dispose()
    {
        _journal.Dispose();
        _dir.Dispose();
    }

    private Serilog.Core.Logger NewLogger(JournaldSinkOptions? options = null)
        => new LoggerConfiguration()
            .MinimumLevel.Verbose()
            .WriteTo.Journald(options ?? new JournaldSinkOptions { SocketPath = _journal.Address })
            .CreateLogger();

    private async Task<JournalEntry> ReceiveEntryAsync(string what)
    {
        using var datagram = await _journal.ReceiveAsync(what);
        return JournalEntry.From(datagram);
    }

    [Fact]
    public async Task An_entry_carries_message_priority_identifier_logger_and_properties()
    {
        using var log = NewLogger();
        log.ForContext("SourceContext", "Crsc.Node.CheckpointExecutor")
            .Information("Checkpointed {Pod} container {ContainerName} in {Seconds} s, {Bytes} bytes, ok {Ok}", "web-0", "app", 1.5, 1048576L, true);

        var entry = await ReceiveEntryAsync("an entry");
        Assert.Equal(JournalTransport.Datagram, entry.Transport);
        Assert.Equal("Checkpointed \"web-0\" container \"app\" in 1.5 s, 1048576 bytes, ok True", entry["MESSAGE"]);
        Assert.Equal("6", entry["PRIORITY"]);
        Assert.Equal("crsc", entry["SYSLOG_IDENTIFIER"]);
        Assert.Equal("Crsc.Node.CheckpointExecutor", entry["LOGGER"]);
        Assert.Equal("Crsc.Node.CheckpointExecutor", entry["SOURCE_CONTEXT"]);
        Assert.Equal("web-0", entry["POD"]);
        Assert.Equal("app", entry["CONTAINER_NAME"]);
        Assert.Equal("1.5", entry["SECONDS"]);
        Assert.Equal("1048576", entry["BYTES"]);
        Assert.Equal("true", entry["OK"]);
        Assert.False(entry.Has("EXCEPTION"));
        Assert.False(entry.Has("ERRNO"));
        Assert.All(entry.Fields, f => Assert.False(f.Binary, $"{f.Name} should be in the text form"));
        Assert.All(entry.Fields, f => Assert.True(JournalFieldName.IsValid(f.Name), f.Name));
    }

    [Theory]
    [InlineData(LogEventLevel.Verbose, "7")]
    [InlineData(LogEventLevel.Debug, "7")]
    [InlineData(LogEventLevel.Information, "6")]
    [InlineData(LogEventLevel.Warning, "4")]
    [InlineData(LogEventLevel.Error, "3")]
    [InlineData(LogEventLevel.Fatal, "2")]
    public async Task Levels_arrive_as_syslog_priorities(LogEventLevel level, string priority)
    {
        using var log = NewLogger();
        log.Write(level, "level test");
        Assert.Equal(priority, (await ReceiveEntryAsync(level.ToString()))["PRIORITY"]);
    }

    [Fact]
    public async Task The_identifier_is_configurable_and_an_abstract_socket_works()
    {
        using var abstractJournal = DatagramReceiver.BindAbstract();
        using var log = new LoggerConfiguration().WriteTo.Journald(syslogIdentifier: "crsc-test", socketPath: abstractJournal.Address).CreateLogger();
        log.Warning("hello");
        using var datagram = await abstractJournal.ReceiveAsync("entry on an abstract socket");
        var entry = JournalEntry.From(datagram);
        Assert.Equal("crsc-test", entry["SYSLOG_IDENTIFIER"]);
        Assert.Equal("hello", entry["MESSAGE"]);
    }

    [Fact]
    public async Task Exceptions_arrive_whole_in_the_binary_framing_with_their_errno()
    {
        using var log = NewLogger();
        Exception failure;
        try
        {
            throw new IOException("checkpoint failed", new Win32Exception(28, "No space left on device"));
        }
        catch (IOException e)
        {
            failure = e;
        }
        log.Error(failure, "Checkpoint of {Pod} failed", "web-0");

        var entry = await ReceiveEntryAsync("error entry");
        Assert.Equal("Checkpoint of \"web-0\" failed", entry["MESSAGE"]);
        Assert.Equal("3", entry["PRIORITY"]);
        Assert.Equal(failure.ToString(), entry["EXCEPTION"]);
        Assert.Contains("No space left on device", entry["EXCEPTION"], StringComparison.Ordinal);
        Assert.True(entry.IsBinary("EXCEPTION"));
        Assert.Equal("28", entry["ERRNO"]);
    }

    [Fact]
    public async Task A_multi_line_message_arrives_in_the_binary_framing()
    {
        using var log = NewLogger();
        log.Information("first line\nsecond line\n{Detail}", "third\nfourth");

        var entry = await ReceiveEntryAsync("multi-line entry");
        Assert.Equal("first line\nsecond line\n\"third\nfourth\"", entry["MESSAGE"]);
        Assert.True(entry.IsBinary("MESSAGE"));
        Assert.Equal("third\nfourth", entry["DETAIL"]);
        Assert.True(entry.IsBinary("DETAIL"));
        Assert.False(entry.IsBinary("PRIORITY"));
    }

    [Fact]
    public async Task Structured_values_are_compact_text_and_reserved_names_are_not_overwritten()
    {
        using var log = NewLogger();
        log.ForContext("CallerMemberName", "ExecuteAsync").ForContext("CallerFilePath", "/src/Node/Executor.cs").ForContext("CallerLineNumber", 42)
            .ForContext("Message", "a property called Message").ForContext("Priority", "high")
            .Information("Ports {Ports} labels {Labels}", new[] { 80, 443 }, new Dictionary<string, string> { ["app"] = "web" });

        var entry = await ReceiveEntryAsync("structured entry");
        Assert.Equal("[80,443]", entry["PORTS"]);
        Assert.Equal("{\"app\":\"web\"}", entry["LABELS"]);
        Assert.Equal("ExecuteAsync", entry["CODE_FUNC"]);
        Assert.Equal("/src/Node/Executor.cs", entry["CODE_FILE"]);
        Assert.Equal("42", entry["CODE_LINE"]);
        Assert.StartsWith("Ports [80, 443]", entry["MESSAGE"], StringComparison.Ordinal); // exactly one MESSAGE
        Assert.Equal("6", entry["PRIORITY"]);
        Assert.Equal("a property called Message", entry["MESSAGE_PROPERTY"]);
        Assert.Equal("high", entry["PRIORITY_PROPERTY"]);
    }

    [Fact]
    public async Task Scope_values_from_Microsoft_Extensions_Logging_become_fields()
    {
        using var serilog = NewLogger();
        using var factory = new SerilogLoggerFactory(serilog);
        var logger = factory.CreateLogger("Crsc.Controllers.Reconciler");

        using (logger.BeginScope(new Dictionary<string, object> { ["ReconcileId"] = "r-17", ["Namespace"] = "default" }))
        using (logger.BeginScope("Reconciling {Name}", "web"))
        {
            logger.LogWarning(new EventId(4201, "RequeueAfter"), "Requeue after {Delay}", TimeSpan.FromSeconds(30));
        }

        var entry = await ReceiveEntryAsync("entry with scopes");
        Assert.Equal("Requeue after 00:00:30", entry["MESSAGE"]);
        Assert.Equal("4", entry["PRIORITY"]);
        Assert.Equal("Crsc.Controllers.Reconciler", entry["LOGGER"]);
        Assert.Equal("r-17", entry["RECONCILE_ID"]);
        Assert.Equal("default", entry["NAMESPACE"]);
        Assert.Equal("web", entry["NAME"]);
        Assert.Contains("Reconciling web", entry["SCOPE"], StringComparison.Ordinal);
        Assert.Equal("00:00:30", entry["DELAY"]);
        Assert.Equal("4201", entry["EVENT_ID"]);
        Assert.Equal("RequeueAfter", entry["EVENT_NAME"]);
    }

    [Fact]
    public async Task A_300_KiB_entry_arrives_through_a_sealed_memfd()
    {
        using var log = NewLogger();
        var big = BigText(300 * 1024);
        log.Information("{Dump}", big);

        var entry = await ReceiveEntryAsync("large entry");
        Assert.Equal(JournalTransport.Memfd, entry.Transport);
        const int allSeals = ReceiverNative.F_SEAL_SEAL | ReceiverNative.F_SEAL_SHRINK | ReceiverNative.F_SEAL_GROW | ReceiverNative.F_SEAL_WRITE;
        Assert.Equal(allSeals, entry.Seals & allSeals);
        Assert.Equal(big, entry["DUMP"]);
        Assert.Equal("\"" + big + "\"", entry["MESSAGE"]);
        Assert.Equal("crsc", entry["SYSLOG_IDENTIFIER"]);
    }

    [Fact]
    public async Task An_entry_the_socket_refuses_as_too_large_goes_through_a_memfd()
    {
        // no size threshold: the datagram is tried first and the kernel answers EMSGSIZE
        // (4 MiB is more than any unix datagram send buffer allows)
        using var log = NewLogger(new JournaldSinkOptions { SocketPath = _journal.Address, MaxDatagramBytes = int.MaxValue });
        var big = BigText(4 * 1024 * 1024);
        log.Information("{Dump}", big);

        var entry = await ReceiveEntryAsync("entry refused with EMSGSIZE");
        Assert.Equal(JournalTransport.Memfd, entry.Transport);
        Assert.Equal(big, entry["DUMP"]);

        log.Information("small again");
        var small = await ReceiveEntryAsync("small entry after");
        Assert.Equal(JournalTransport.Datagram, small.Transport);
    }

    [Fact]
    public async Task Without_memfd_large_entries_go_through_an_unlinked_temp_file()
    {
        using var shm = new TempDir("crsc-shm-");
        using var log = NewLogger(new JournaldSinkOptions { SocketPath = _journal.Address, DisableMemfd = true, TempFileDirectory = shm.Path });
        var big = BigText(200 * 1024);
        log.Information("{Dump}", big);

        var entry = await ReceiveEntryAsync("large entry through a file");
        Assert.Equal(JournalTransport.File, entry.Transport);
        Assert.StartsWith(shm.Path + "/crsc-journal-", entry.FdTarget, StringComparison.Ordinal);
        Assert.EndsWith("(deleted)", entry.FdTarget, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(shm.Path));
        Assert.Equal(big, entry["DUMP"]);
    }

    [Fact]
    public async Task Concurrent_writers_each_get_whole_entries()
    {
        const int threads = 4, perThread = 100;
        // this test is about whole entries, not about the send timeout: a receiver slowed by a busy machine must not
        // turn into dropped entries (JournaldSinkFailureTests has the timeout's own test)
        using var log = NewLogger(new JournaldSinkOptions { SocketPath = _journal.Address, SendTimeout = TimeSpan.FromMinutes(2) });
        // collect raw datagrams first: a receiver that stopped on a bad entry would leave the writers blocked
        var datagrams = new List<byte[]>();
        var receiving = Task.Run(async () =>
        {
            while (datagrams.Count < threads * perThread)
            {
                using var datagram = await _journal.ReceiveAsync($"entry {datagrams.Count + 1} of {threads * perThread}");
                Assert.Empty(datagram.Fds);
                datagrams.Add(datagram.Data);
            }
        });
        // writers on their own threads: four pool threads blocked in send() on a 2-core machine starve the receiver
        var writers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
        {
            for (var i = 0; i < perThread; i++) log.Information("writer {Writer} entry {Seq}\nsecond line", t, i);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        var writing = Task.WhenAll(writers);
        if (await Task.WhenAny(receiving, writing) == receiving && receiving.IsFaulted)
            _journal.Dispose(); // fail fast: writers blocked on a full queue see ECONNREFUSED
        await writing;
        await receiving;

        var received = datagrams.Select(d => new JournalEntry(JournalEntry.Parse(d), JournalTransport.Datagram, -1, null)).ToList();
        var keys = received.Select(e => $"{e["WRITER"]}/{e["SEQ"]}").ToHashSet();
        Assert.Equal(threads * perThread, keys.Count);
        Assert.All(received, e => Assert.Equal($"writer {e["WRITER"]} entry {e["SEQ"]}\nsecond line", e["MESSAGE"]));
    }

    internal static string BigText(int length)
    {
        var text = new StringBuilder(length);
        for (var line = 0; text.Length < length; line++) text.Append("line ").Append(line).Append(": ").Append('x', 60).Append('\n');
        return text.ToString(0, length);
    }
}

/// <summary>Uses Serilog's process-wide SelfLog: not run in parallel with anything.</summary>
[Collection(SerialCollection.Name)]
public sealed class JournaldSinkFailureTests
{
    [Fact]
    public async Task A_missing_or_dead_journal_never_throws_drops_and_warns_once_per_outage()
    {
        using var dir = new TempDir();
        var path = dir.Combine("journal.socket");
        var selfLog = new StringWriter();
        Serilog.Debugging.SelfLog.Enable(TextWriter.Synchronized(selfLog));
        try
        {
            using var sink = new JournaldSink(new JournaldSinkOptions { SocketPath = path });
            using var log = new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger();

            // no socket at all (ENOENT), small and large entries
            log.Information("lost 1");
            log.Information("{Dump}", JournaldSinkTests.BigText(100 * 1024));
            sink.Emit(new LogEvent(DateTimeOffset.Now, LogEventLevel.Error, null, MessageTemplate.Empty, []));
            Assert.Equal(3, sink.EntriesDropped);
            Assert.Equal(1, CountWarnings(selfLog));

            // journald comes (back)
            using (var journal = DatagramReceiver.BindPath(path, leaveFileOnClose: true))
            {
                log.Information("delivered");
                using var datagram = await journal.ReceiveAsync("entry once the journal is there");
                Assert.Equal("delivered", JournalEntry.From(datagram)["MESSAGE"]);
                Assert.Equal(1, sink.EntriesWritten);
            }

            // and goes again: its socket file stays behind (ECONNREFUSED): one more warning for the new outage
            Assert.True(File.Exists(path));
            log.Information("lost 2");
            log.Information("{Dump}", JournaldSinkTests.BigText(100 * 1024));
            Assert.Equal(5, sink.EntriesDropped);
            Assert.Equal(2, CountWarnings(selfLog));
            Assert.Equal(1, sink.EntriesWritten);
        }
        finally
        {
            Serilog.Debugging.SelfLog.Disable();
        }
    }

    [Fact]
    public async Task A_journal_that_stops_reading_costs_a_writer_the_send_timeout_then_the_entry_is_dropped()
    {
        // journald stalls (its queue is full): the daemon's logging must not hang with it
        using var journal = DatagramReceiver.BindAbstract();
        var selfLog = new StringWriter();
        Serilog.Debugging.SelfLog.Enable(TextWriter.Synchronized(selfLog));
        try
        {
            using var sink = new JournaldSink(new JournaldSinkOptions { SocketPath = journal.Address, SendTimeout = TimeSpan.FromMilliseconds(200) });
            using var log = new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger();
            var attempts = 0;
            while (sink.EntriesDropped == 0)
            {
                Assert.True(attempts < 100_000, "the socket never filled up");
                log.Information("entry {Seq}", attempts++);
            }
            Assert.Equal(1, sink.EntriesDropped);
            Assert.Equal(attempts - 1, sink.EntriesWritten);
            Assert.Equal(1, CountWarnings(selfLog));

            // everything written is there, whole and in order; once journald reads again entries flow
            for (var i = 0; i < attempts - 1; i++)
            {
                using var datagram = journal.ReceiveNow() ?? throw new Xunit.Sdk.XunitException($"entry {i} of {attempts - 1} missing");
                Assert.Equal($"entry {i}", JournalEntry.From(datagram)["MESSAGE"]);
            }
            log.Information("after the stall");
            using var after = await journal.ReceiveAsync("an entry after the stall");
            Assert.Equal("after the stall", JournalEntry.From(after)["MESSAGE"]);
            Assert.Equal(1, sink.EntriesDropped);
        }
        finally
        {
            Serilog.Debugging.SelfLog.Disable();
        }
    }

    [Fact]
    public void Emitting_after_dispose_drops_quietly()
    {
        var sink = new JournaldSink(new JournaldSinkOptions { SocketPath = "@crsc-test/none" });
        sink.Dispose();
        sink.Emit(new LogEvent(DateTimeOffset.Now, LogEventLevel.Information, null, MessageTemplate.Empty, []));
        Assert.Equal(1, sink.EntriesDropped);
    }

    [Theory]
    [InlineData("relative/socket")]
    [InlineData("")]
    public void A_bad_socket_path_is_a_configuration_error(string path)
    {
        Assert.Throws<ArgumentException>(() => new JournaldSink(new JournaldSinkOptions { SocketPath = path }));
    }

    private static int CountWarnings(StringWriter selfLog)
        => selfLog.ToString().Split('\n').Count(l => l.Contains("journald sink: cannot write", StringComparison.Ordinal));
}
