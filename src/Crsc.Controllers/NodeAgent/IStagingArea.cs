using Crsc.Controllers.Storage;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The few file operations the checkpoint path needs around the runtime's output: removing a staged archive,
/// checking the archive the kubelet names (and removing it once stored) and reading the end of a CRIU log the
/// runtime left behind. Implemented on the real file system by
/// <see cref="FileStagingArea"/>; tests use a recording fake.
/// </summary>
public interface IStagingArea
{
    /// <summary>Removes the file when it exists (crsc's own staging paths only). Throws when it exists and cannot be removed.</summary>
    void Delete(string path);

    /// <summary>
    /// The identity of the regular file <paramref name="name"/> directly inside <paramref name="directory"/>, looked at
    /// without following links: neither a component of the directory nor the file itself may be a symbolic link.
    /// Reads nothing of the file.
    /// </summary>
    /// <exception cref="IOException">a rule is broken (the message names the component and the rule), or the file is missing</exception>
    FileIdentity CheckFileInDirectory(string directory, string name);

    /// <summary>
    /// Removes <paramref name="name"/> inside <paramref name="directory"/> only when <see cref="CheckFileInDirectory"/>
    /// still passes and names the same file (<paramref name="expected"/>); otherwise removes nothing and says why.
    /// </summary>
    /// <returns>null when removed, else why it was left</returns>
    string? DeleteIfSame(string directory, string name, FileIdentity expected);

    /// <summary>
    /// The last <paramref name="maxBytes"/> bytes of a log file as text, or null when there is no regular file there
    /// (a symbolic link is not followed).
    /// </summary>
    string? ReadLogTail(string path, int maxBytes);

    /// <summary>
    /// The last <paramref name="maxBytes"/> bytes of the CRIU log (<c>dump.log</c>, <c>criu-dump.log</c>…) inside a
    /// (partial) checkpoint archive, or null when there is no archive or no log in it.
    /// </summary>
    string? ReadArchiveLogTail(string archivePath, int maxBytes);
}
