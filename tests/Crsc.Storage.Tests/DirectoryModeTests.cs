using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class DirectoryModeTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [Fact]
    public void Missing_store_directories_are_created_0700()
    {
        var root = _f.Dir.Combine("new", "checkpoints");
        var staging = _f.Dir.Combine("new", "staging");
        using (new DiskCheckpointStore(_f.Options(o => o with { CheckpointDirectory = root, StagingDirectory = staging })))
        {
            Assert.Equal(Private, File.GetUnixFileMode(root));
            Assert.Equal(Private, File.GetUnixFileMode(staging));
        }
    }

    [Theory]
    [InlineData("checkpoints", 0b111_101_101)] // /var/lib by typo
    [InlineData("checkpoints", 0b111_000_101)]
    [InlineData("staging", 0b111_111_000)]
    public void A_pre_existing_group_or_world_accessible_directory_is_refused_and_its_mode_left_alone(string which, int mode)
    {
        var root = _f.Dir.Combine("c");
        var staging = _f.Dir.Combine("s");
        Directory.CreateDirectory(root, Private);
        Directory.CreateDirectory(staging, Private);
        var target = which == "checkpoints" ? root : staging;
        File.SetUnixFileMode(target, (UnixFileMode)mode);

        var e = Assert.Throws<UnsafeDirectoryException>(() =>
            new DiskCheckpointStore(_f.Options(o => o with { CheckpointDirectory = root, StagingDirectory = staging })));
        Assert.Equal(target, e.Path);
        Assert.Contains(target, e.Message);
        Assert.Contains("group or others", e.Message);
        Assert.Equal((UnixFileMode)mode, File.GetUnixFileMode(target));
        Assert.False(File.Exists(Path.Combine(root, DiskCheckpointStore.LockFileName)));
    }

    [Fact]
    public void A_pre_existing_directory_owned_by_another_user_is_refused()
    {
        var root = _f.Dir.Combine("c");
        Directory.CreateDirectory(root, Private);
        File.SetUnixFileMode(root, Private);
        Assert.Equal(0, Chown(root, 65534, 65534));

        var e = Assert.Throws<UnsafeDirectoryException>(() => new DiskCheckpointStore(_f.Options(o => o with { CheckpointDirectory = root })));
        Assert.Contains("owned by uid 65534", e.Message);
        Assert.Equal(Private, File.GetUnixFileMode(root));
    }

    [Fact]
    public void A_read_only_store_creates_nothing()
    {
        var root = _f.Dir.Combine("c");
        Directory.CreateDirectory(root, Private);
        var staging = _f.Dir.Combine("absent-staging");
        using (var store = new DiskCheckpointStore(_f.Options(o => o with { CheckpointDirectory = root, StagingDirectory = staging, ReadOnly = true })))
            Assert.Empty(store.List());
        Assert.False(Directory.Exists(staging));
        Assert.Empty(Directory.EnumerateFileSystemEntries(root));

        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        Assert.Throws<UnsafeDirectoryException>(() => new DiskCheckpointStore(_f.Options(o => o with { CheckpointDirectory = root, ReadOnly = true })));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(root));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown(string path, uint owner, uint group);
}
