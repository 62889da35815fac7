namespace Crsc.Systemd.Journal;

/// <summary>Settings of <see cref="JournaldSink"/>; the defaults are what a systemd service wants.</summary>
public sealed class JournaldSinkOptions
{
    /// <summary>journald's native socket (a path or an abstract <c>@name</c>).</summary>
    public string SocketPath { get; set; } = SystemdEnvironment.JournalSocketPath;

    /// <summary><c>SYSLOG_IDENTIFIER=</c> of every entry (what <c>journalctl -t</c> matches).</summary>
    public string SyslogIdentifier { get; set; } = "crsc";

    /// <summary>Culture for rendering MESSAGE; null is the current culture (invariant in crsc).</summary>
    public IFormatProvider? FormatProvider { get; set; }

    /// <summary>
    /// Entries larger than this are not sent as a datagram but through a sealed memfd passed with SCM_RIGHTS
    /// (entries that the socket refuses with EMSGSIZE/ENOBUFS take that way too). Default 64 KiB.
    /// </summary>
    public int MaxDatagramBytes { get; set; } = 64 * 1024;

    /// <summary>How long a write may wait when journald's queue is full; then the entry is dropped.</summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Where large entries go, as unlinked files, when memfd_create is not available.</summary>
    public string TempFileDirectory { get; set; } = "/dev/shm";

    /// <summary>Tests only: behave as if memfd_create did not exist.</summary>
    internal bool DisableMemfd { get; set; }
}
