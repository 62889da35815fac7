namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The few file operations the checkpoint path needs around the runtime's output: removing a staged archive and
/// reading the end of a CRIU log the runtime left behind. Implemented on the real file system by
/// <see cref="FileStagingArea"/>; tests use a recording fake.
/// </summary>
public interface IStagingArea
{
    /// <summary>Removes the file when it exists. Throws when it exists and cannot be removed.</summary>
    void Delete(string path);

    /// <summary>The last <paramref name="maxBytes"/> bytes of a log file as text, or null when there is no such file.</summary>
    string? ReadLogTail(string path, int maxBytes);

    /// <summary>
    /// The last <paramref name="maxBytes"/> bytes of the CRIU log (<c>dump.log</c>, <c>criu-dump.log</c>…) inside a
    /// (partial) checkpoint archive, or null when there is no archive or no log in it.
    /// </summary>
    string? ReadArchiveLogTail(string archivePath, int maxBytes);
}
