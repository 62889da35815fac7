namespace Crsc.Testing;

/// <summary>A private (0700) temporary directory, removed with everything in it on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string prefix = "crsc-test-")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public override string ToString() => Path;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { /* a test left a busy file behind; the OS temp cleaner takes it */ }
        catch (UnauthorizedAccessException) { }
    }
}
