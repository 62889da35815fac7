using System.Net;
using System.Text;
using System.Text.Json;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Interceptor.Tests;

/// <summary>The replay log: what goes in, when it is durable, what a checkpoint and a restore do with it.</summary>
public sealed class ReplayTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private readonly TempDir _dir = new();
    private EchoApp _app = null!;

    public async Task InitializeAsync() => _app = await EchoApp.StartAsync();

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _dir.Dispose();
    }

    private string LogPath => _dir.Combine("replay.log");

    private ReplayOptions Options(string methods = "all") => new()
    {
        Methods = ReplayMethods.Parse(methods, out _)!,
        LogPath = LogPath,
        ConnectAttempts = 2,
        ConnectRetryDelay = TimeSpan.Zero,
    };

    /// <summary>A proxy in front of the app with a replay log, and the control server's answers (no socket needed).</summary>
    private sealed class Rig(InterceptorProxy proxy, HoldGate gate, ReplayLog log, ControlServer control) : IAsyncDisposable
    {
        public InterceptorProxy Proxy => proxy;
        public HoldGate Gate => gate;
        public ReplayLog Log => log;
        public HttpClient Http { get; } = new() { BaseAddress = new Uri($"http://{proxy.LocalEndPoint}/") };

        public async Task<JsonElement> AskAsync(string line)
        {
            var answer = await control.AnswerAsync(line, CancellationToken.None);
            Assert.StartsWith("ok ", answer);
            return JsonDocument.Parse(answer[3..]).RootElement;
        }

        public Task<string> AnswerAsync(string line) => control.AnswerAsync(line, CancellationToken.None);

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await proxy.DisposeAsync();
            await control.DisposeAsync();
            gate.Dispose();
            log.Dispose();
        }
    }

    private Rig Start(ReplayOptions? replay = null, EndPoint? upstream = null, Action<FileStream>? sync = null, HoldOptions? hold = null)
    {
        var log = new ReplayLog(replay ?? Options(), NullLogger.Instance, sync);
        var options = new InterceptorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = upstream ?? _app.EndPoint,
            Hold = hold ?? new HoldOptions(),
        };
        var gate = new HoldGate(options.Hold, _time);
        var proxy = new InterceptorProxy(options, gate, _time, NullLogger.Instance, log);
        proxy.Start();
        return new Rig(proxy, gate, log, new ControlServer(_dir.Combine("control.sock"), gate, NullLogger.Instance, log, _time));
    }

    private static async Task PostAsync(HttpClient http, string path, string body)
    {
        var r = await http.PostAsync(path, new StringContent(body));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    private List<string> Seen() => [.. _app.Requests.Select(r => $"{r.Method} {r.Path} {r.Body}".TrimEnd())];

    [Fact]
    public async Task After_a_restore_replay_sends_the_logged_requests_in_order_one_at_a_time_and_counts_the_answers()
    {
        await using var rig = Start();
        await PostAsync(rig.Http, "a", "one");
        await rig.Http.PutAsync("b", new StringContent("two"));
        // chunked: the log keeps the body without its framing
        var chunked = new HttpRequestMessage(HttpMethod.Post, "c") { Content = new StreamContent(new MemoryStream("three"u8.ToArray())) };
        chunked.Headers.TransferEncodingChunked = true;
        chunked.Headers.Add("X-Order", "3");
        await rig.Http.SendAsync(chunked);
        await rig.Http.DeleteAsync("d");
        var before = Seen();

        var held = await rig.AskAsync("hold restore");
        Assert.True(held.GetProperty("quiesced").GetBoolean());
        Assert.Equal(4, held.GetProperty("replay").GetProperty("entries").GetInt32());
        var replayed = await rig.AskAsync("replay");
        var last = replayed.GetProperty("replay").GetProperty("lastReplay");
        Assert.True(last.GetProperty("succeeded").GetBoolean());
        Assert.Equal(4, last.GetProperty("replayed").GetInt32());
        Assert.Equal(4, last.GetProperty("statuses").GetProperty("200").GetInt32());
        await rig.AskAsync("release");

        Assert.Equal(["POST /a one", "PUT /b two", "POST /c three", "DELETE /d"], before);
        Assert.Equal([.. before, .. before], Seen());
        // the replay keeps the log: another restore from the same checkpoint replays it again
        Assert.Equal(4, rig.Log.Status().Entries);
    }

    [Fact]
    public async Task The_log_is_owner_only_and_a_link_planted_beside_it_is_neither_followed_nor_removed()
    {
        // the emptyDir is the app's too: it may leave a link where a temp file of the log could go (the log is
        // written whole at the start and again at the truncation below)
        var victim = _dir.Combine("victim");
        File.WriteAllText(victim, "keep");
        File.CreateSymbolicLink(LogPath + ".tmp", victim);
        await using var rig = Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LogPath));
        await PostAsync(rig.Http, "a", "secret");
        var held = await rig.AskAsync("hold checkpoint");
        await rig.AskAsync($"checkpointed {held.GetProperty("replay").GetProperty("position").GetInt64()}");
        await rig.AskAsync("release");

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LogPath));
        Assert.Equal("keep", File.ReadAllText(victim));
        // crsc removes nothing it did not make: the app's link is still there, untouched, and no temp file of crsc's is left
        Assert.Equal(victim, new FileInfo(LogPath + ".tmp").LinkTarget);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(LogPath)!, Path.GetFileName(LogPath) + ".tmp-*"));
    }

    [Fact]
    public async Task Replay_refuses_while_the_traffic_is_not_held()
    {
        await using var rig = Start();
        await PostAsync(rig.Http, "a", "one");
        Assert.StartsWith("error replay needs the traffic held", await rig.AnswerAsync("replay"));
        Assert.Single(_app.Requests);
    }

    [Fact]
    public async Task A_completed_checkpoint_truncates_the_log_at_its_holds_position()
    {
        await using var rig = Start();
        await PostAsync(rig.Http, "a", "1");
        await PostAsync(rig.Http, "b", "2");
        var position = (await rig.AskAsync("hold checkpoint")).GetProperty("replay").GetProperty("position").GetInt64();
        await rig.AskAsync("release");
        await PostAsync(rig.Http, "c", "3"); // after the checkpoint: not in its state

        var after = await rig.AskAsync($"checkpointed {position}");
        Assert.Equal(1, after.GetProperty("replay").GetProperty("entries").GetInt32());
        Assert.Equal(position, after.GetProperty("replay").GetProperty("truncatedAt").GetInt64());

        _app.Requests.Clear();
        await rig.AskAsync("hold restore");
        await rig.AskAsync("replay");
        Assert.Equal(["POST /c 3"], Seen());
        Assert.StartsWith("error", await rig.AnswerAsync("checkpointed x"));
        Assert.StartsWith("error", await rig.AnswerAsync($"checkpointed {position + 1000}")); // never given out
    }

    [Fact]
    public async Task Hold_answers_once_the_request_in_flight_is_answered_so_its_position_covers_it()
    {
        await using var rig = Start();
        var slow = rig.Http.PostAsync("slow", new StringContent("s"));
        await Eventually.TrueAsync(() => _app.Requests.Count == 1, "the app has the slow request");

        var hold = rig.AskAsync("hold checkpoint");
        // (a slow machine only makes this check weaker, never fail)
        await Task.WhenAny(hold, Task.Delay(200));
        Assert.False(hold.IsCompleted, "hold answered while a request was still in flight");

        _app.ReleaseSlow();
        var held = await hold;
        Assert.Equal(HttpStatusCode.OK, (await slow).StatusCode);
        Assert.True(held.GetProperty("quiesced").GetBoolean());
        Assert.Equal(1, held.GetProperty("replay").GetProperty("entries").GetInt32());
        Assert.Equal(held.GetProperty("replay").GetProperty("position").GetInt64(), rig.Log.Position);
    }

    [Fact]
    public async Task A_hold_whose_requests_do_not_finish_answers_after_the_quiesce_timeout_saying_so()
    {
        await using var rig = Start(hold: new HoldOptions { QuiesceTimeout = TimeSpan.FromSeconds(5) });
        var slow = rig.Http.PostAsync("slow", new StringContent("s"));
        await Eventually.TrueAsync(() => _app.Requests.Count == 1, "the app has the slow request");
        var hold = rig.AskAsync("hold checkpoint");
        await Eventually.TrueAsync(() => { _time.Advance(TimeSpan.FromSeconds(1)); return hold.IsCompleted; }, "hold answered");
        Assert.False((await hold).GetProperty("quiesced").GetBoolean());
        _app.ReleaseSlow();
        await slow;
    }

    [Fact]
    public async Task The_app_answer_goes_back_only_after_the_fsync_that_made_the_request_durable_and_a_batch_shares_one()
    {
        using var blocked = new ManualResetEventSlim(false);
        var entered = new SemaphoreSlim(0);
        var syncs = 0;
        await using var rig = Start(sync: f =>
        {
            Interlocked.Increment(ref syncs);
            entered.Release();
            blocked.Wait();
            f.Flush(flushToDisk: true);
        });
        try { await AcknowledgedAfterTheFsyncAsync(rig, blocked, entered, () => Volatile.Read(ref syncs)); }
        finally { blocked.Set(); } // a failed assertion must not leave the log's flusher blocked
    }

    private async Task AcknowledgedAfterTheFsyncAsync(Rig rig, ManualResetEventSlim blocked, SemaphoreSlim entered, Func<int> syncs)
    {
        var first = rig.Http.PostAsync("first", new StringContent("1"));
        Assert.True(await entered.WaitAsync(TimeSpan.FromSeconds(20)), "the first request reached the log");
        Assert.Single(_app.Requests); // the app did answer it

        // three more arrive while the fsync runs: they wait for it, then share the next one
        using var others = new HttpClient { BaseAddress = rig.Http.BaseAddress };
        var rest = Enumerable.Range(0, 3).Select(i => others.PostAsync($"r{i}", new StringContent($"{i}"))).ToList();
        await Eventually.TrueAsync(() => rig.Log.UnwrittenEntries == 4, "the three wait behind the first fsync");
        await Task.WhenAny(first, Task.Delay(200));
        Assert.False(first.IsCompleted, "the client had the app's answer before the request was durable");
        Assert.Equal(0, rig.Log.Status().Entries);

        blocked.Set();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        foreach (var r in rest) Assert.Equal(HttpStatusCode.OK, (await r).StatusCode);
        Assert.Equal(2, syncs());
        Assert.Equal(4, rig.Log.Status().Entries);
    }

    [Theory]
    [InlineData("non-GET", "POST /p,PUT /u,DELETE /d")]
    [InlineData("POST,PUT", "POST /p,PUT /u")]
    [InlineData("all", "GET /g,HEAD /h,OPTIONS /o,POST /p,PUT /u,DELETE /d")]
    public async Task Only_the_chosen_methods_are_logged(string methods, string logged)
    {
        await using var rig = Start(Options(methods));
        await rig.Http.GetAsync("g");
        await rig.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "h"));
        await rig.Http.SendAsync(new HttpRequestMessage(HttpMethod.Options, "o"));
        await PostAsync(rig.Http, "p", "");
        await rig.Http.PutAsync("u", new StringContent(""));
        await rig.Http.DeleteAsync("d");

        var entries = await rig.Log.EntriesAsync(CancellationToken.None);
        Assert.Equal(logged.Split(','), entries.Select(e => $"{e.Method} {e.Target}"));
    }

    [Theory]
    [InlineData("none", "none")]
    [InlineData("all", "all")]
    [InlineData("non-GET", "non-GET")]
    [InlineData("POST, PUT", "POST,PUT")]
    public void The_methods_vocabulary_parses(string text, string normalised) =>
        Assert.Equal(normalised, ReplayMethods.Parse(text, out _)!.Text);

    [Theory]
    [InlineData("post")]
    [InlineData("non-get")]
    [InlineData("")]
    [InlineData("POST,")]
    [InlineData("POST PUT")]
    public void A_bad_methods_value_is_refused_naming_it(string text)
    {
        Assert.Null(ReplayMethods.Parse(text, out var problem));
        Assert.Contains($"'{text}'", problem);
    }

    [Fact]
    public async Task The_log_survives_a_restart_of_the_interceptor_and_positions_go_on_growing()
    {
        long position;
        await using (var rig = Start())
        {
            await PostAsync(rig.Http, "a", "1");
            await PostAsync(rig.Http, "b", "2");
            position = (await rig.AskAsync("hold checkpoint")).GetProperty("replay").GetProperty("position").GetInt64();
            await rig.AskAsync("release");
        }
        _app.Requests.Clear();
        // a new interceptor (the sidecar container restarted) over the same file
        await using var again = Start();
        Assert.Equal(2, again.Log.Status().Entries);
        await PostAsync(again.Http, "c", "3");
        // the checkpoint whose hold answered before the restart completes now: it drops a and b, not c
        await again.AskAsync($"checkpointed {position}");
        await again.AskAsync("hold restore");
        await again.AskAsync("replay");
        Assert.Equal(["POST /c 3", "POST /c 3"], Seen());
    }

    [Theory]
    [InlineData("cut")]
    [InlineData("corrupt")]
    public async Task A_torn_tail_is_cut_at_the_last_good_record_on_open_and_never_replayed(string how)
    {
        await using (var rig = Start())
        {
            await PostAsync(rig.Http, "a", "1");
            await PostAsync(rig.Http, "b", "2");
            await PostAsync(rig.Http, "c", "3");
        }
        var bytes = await File.ReadAllBytesAsync(LogPath);
        var good = bytes.Length - (bytes.Length - LastRecordOffset(bytes));
        if (how == "cut") bytes = bytes[..^5]; // a crash mid-append
        else bytes[^3] ^= 0xFF; // its CRC no longer matches
        await File.WriteAllBytesAsync(LogPath, bytes);
        _app.Requests.Clear();

        await using var again = Start();
        Assert.Equal(2, again.Log.Status().Entries);
        Assert.Equal(good, new FileInfo(LogPath).Length);
        await PostAsync(again.Http, "d", "4"); // appended after the cut, not after the garbage
        await again.AskAsync("hold restore");
        await again.AskAsync("replay");
        Assert.Equal(["POST /d 4", "POST /a 1", "POST /b 2", "POST /d 4"], Seen());
    }

    /// <summary>Where the last record of the log starts (walking the length prefixes).</summary>
    private static int LastRecordOffset(byte[] bytes)
    {
        var offset = 8;
        var last = offset;
        while (offset < bytes.Length)
        {
            last = offset;
            offset += 8 + BitConverter.ToInt32(bytes, offset);
        }
        return last;
    }

    [Fact]
    public async Task Over_its_bounds_the_log_overflows_loudly_replay_refuses_and_a_later_checkpoint_ends_it()
    {
        await using (var rig = Start(Options() with { MaxEntries = 2 }))
        {
            await PostAsync(rig.Http, "a", "1");
            await PostAsync(rig.Http, "b", "2");
            await PostAsync(rig.Http, "c", "3"); // the app still has it: only the log is over
            Assert.Equal(3, _app.Requests.Count);
            var status = (await rig.AskAsync("status")).GetProperty("replay");
            Assert.True(status.GetProperty("overflowed").GetBoolean());
            Assert.Contains("--replay-max-entries", status.GetProperty("overflowReason").GetString());
            Assert.Equal(2, status.GetProperty("entries").GetInt32());
        }
        _app.Requests.Clear();
        // the overflow outlives a restart, and a replay of a partial history is refused
        await using var again = Start(Options() with { MaxEntries = 2 });
        Assert.True(again.Log.Overflowed);
        var position = (await again.AskAsync("hold restore")).GetProperty("replay").GetProperty("position").GetInt64();
        var refused = await again.AnswerAsync("replay");
        Assert.StartsWith("error replay failed: the log overflowed", refused);
        Assert.Empty(_app.Requests);
        Assert.False((await again.AskAsync("status")).GetProperty("replay").GetProperty("lastReplay").GetProperty("succeeded").GetBoolean());
        await again.AskAsync("release");

        // a checkpoint whose hold came after the dropped requests covers them: the log is whole (empty) and logs again
        var cleared = (await again.AskAsync($"checkpointed {position}")).GetProperty("replay");
        Assert.False(cleared.GetProperty("overflowed").GetBoolean());
        Assert.Equal(0, cleared.GetProperty("entries").GetInt32());
        await PostAsync(again.Http, "d", "4");
        Assert.Equal(1, again.Log.Status().Entries);
    }

    [Fact]
    public async Task A_checkpoint_older_than_a_dropped_request_does_not_end_the_overflow()
    {
        await using var rig = Start(Options() with { MaxEntries = 1 });
        await PostAsync(rig.Http, "a", "1");
        var position = (await rig.AskAsync("hold checkpoint")).GetProperty("replay").GetProperty("position").GetInt64();
        await rig.AskAsync("release");
        await PostAsync(rig.Http, "b", "2"); // dropped after the checkpoint's hold
        var after = (await rig.AskAsync($"checkpointed {position}")).GetProperty("replay");
        Assert.True(after.GetProperty("overflowed").GetBoolean());
    }

    [Fact]
    public async Task A_body_over_the_byte_bound_overflows_the_log_and_the_request_still_goes_through()
    {
        await using var rig = Start(Options() with { MaxBytes = 4096 });
        var big = new string('x', 5000);
        var r = await rig.Http.PostAsync("big", new StringContent(big));
        Assert.Equal("POST /big: " + big, await r.Content.ReadAsStringAsync());
        Assert.True(rig.Log.Overflowed);
        Assert.Contains("--replay-max-bytes", rig.Log.Status().OverflowReason);
        Assert.True(new FileInfo(LogPath).Length <= 4096);
    }

    [Fact]
    public async Task A_replay_the_app_answers_with_5xx_stops_there_reports_it_and_keeps_the_log()
    {
        var answers = 0;
        using var app = new ScriptedApp(async (s, _) =>
        {
            while (true)
            {
                var head = await ScriptedApp.ReadHeadAsync(s);
                var length = head.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    .Select(l => int.Parse(l[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                var body = new byte[length];
                for (var got = 0; got < length;) got += await s.ReceiveAsync(body.AsMemory(got));
                // the first two requests (logged) succeed; in the replay the second one fails
                var status = Interlocked.Increment(ref answers) == 4 ? "500 Internal Server Error" : "200 OK";
                await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok"));
            }
        });
        await using var rig = Start(upstream: app.EndPoint);
        await PostAsync(rig.Http, "a", "1");
        await PostAsync(rig.Http, "b", "2");
        await rig.AskAsync("hold restore");
        var answer = await rig.AnswerAsync("replay");
        Assert.StartsWith("error replay failed: entry 2 of 2 (POST /b", answer);
        Assert.Contains("500", answer);
        var last = rig.Log.Status().LastReplay!;
        Assert.Equal(1, last.Replayed);
        Assert.Equal(2, rig.Log.Status().Entries);
    }

    [Fact]
    public async Task A_replay_to_an_app_that_is_not_listening_fails_after_its_attempts_and_keeps_the_log()
    {
        var app = await EchoApp.StartAsync();
        await using var rig = Start(upstream: app.EndPoint);
        await PostAsync(rig.Http, "a", "1");
        await app.DisposeAsync(); // the restored app never comes up
        await rig.AskAsync("hold restore");
        var answer = await rig.AnswerAsync("replay");
        Assert.Contains("cannot connect to the app after 2 attempts", answer);
        Assert.Equal(1, rig.Log.Status().Entries);
        Assert.Contains("cannot connect", (await rig.AskAsync("status")).GetProperty("replay").GetProperty("lastReplay").GetProperty("error").GetString());
    }

    [Fact]
    public async Task Without_a_replay_log_checkpointed_and_replay_are_accepted_and_do_nothing()
    {
        using var gate = new HoldGate(new HoldOptions(), _time);
        await using var control = new ControlServer(_dir.Combine("control.sock"), gate, NullLogger.Instance);
        gate.Hold("restore");
        Assert.StartsWith("ok ", await control.AnswerAsync("checkpointed 12", CancellationToken.None));
        var replayed = await control.AnswerAsync("replay", CancellationToken.None);
        Assert.StartsWith("ok ", replayed);
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(replayed[3..]).RootElement.GetProperty("replay").ValueKind);
        Assert.Empty(_app.Requests);
        Assert.StartsWith("error checkpointed takes the position", await control.AnswerAsync("checkpointed", CancellationToken.None));
        await using var rig = Start();
        Assert.Equal("error unknown command 'freeze' (hold [REASON], release, status, checkpointed POS, replay)", await rig.AnswerAsync("freeze"));
    }

    [Fact]
    public async Task A_request_the_app_refuses_before_its_body_is_answered_at_once_and_not_logged()
    {
        // the app answers 417 to the head alone: a client waiting for 100 Continue never sends the body
        using var app = new ScriptedApp(async (s, _) =>
        {
            await ScriptedApp.ReadHeadAsync(s);
            await s.SendAsync("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
            await ScriptedApp.ReadHeadAsync(s); // until the client goes
        });
        await using var rig = Start(upstream: app.EndPoint);
        using var client = await RawClient.ConnectAsync(rig.Proxy.LocalEndPoint);
        await client.SendAsync("POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");

        var (status, _, _) = await client.ReadResponseAsync().WaitAsync(Eventually.DefaultTimeout);

        Assert.Equal(417, status);
        Assert.Equal(0, rig.Log.Status().Entries);
    }

    [Fact]
    public void A_file_that_is_not_a_replay_log_is_left_alone()
    {
        File.WriteAllText(LogPath, "precious data, not a log");
        Assert.Throws<IOException>(() => new ReplayLog(Options(), NullLogger.Instance, null));
        Assert.Equal("precious data, not a log", File.ReadAllText(LogPath));
    }
}
