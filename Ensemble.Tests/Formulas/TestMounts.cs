using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// Mounts that make a path unreadable even for root, which ignores permission bits (the tests run as
/// root). An unserved FUSE mount owned by another user, without allow_other, is refused by the kernel for everyone
/// else, root included (EACCES); one whose server has gone away fails every access with ENOTCONN, a real I/O error.
/// (Read-only directories: <see cref="Support.ReadOnlyMount"/>.) Each mount is removed on Dispose, also when the test failed.
/// </summary>
internal sealed class TestMount : IDisposable
{
    private const int MntDetach = 2;
    private const int Nobody = 65534;

    private readonly SafeFileHandle? fuse;

    private TestMount(string path, SafeFileHandle? fuse)
    {
        Path = path;
        this.fuse = fuse;
    }

    public string Path { get; }

    /// <summary>Covers the directory or file at <paramref name="path"/> so that reading it gives "permission denied".</summary>
    public static TestMount Unreadable(string path) => Fuse(path, Nobody, keepServer: true);

    /// <summary>Covers <paramref name="path"/> with a mount whose server is gone: every access is an I/O error.</summary>
    public static TestMount Disconnected(string path) => Fuse(path, 0, keepServer: false);

    private static TestMount Fuse(string path, int owner, bool keepServer)
    {
        var handle = File.OpenHandle("/dev/fuse", FileMode.Open, FileAccess.ReadWrite);
        var rootMode = Directory.Exists(path) ? "40000" : "100000";
        var options = $"fd={handle.DangerousGetHandle()},rootmode={rootMode},user_id={owner},group_id={owner}";
        try
        {
            Check(Mount("ensemble-test", path, "fuse.ensemble-test", 0, options), "fuse", path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        if (keepServer) return new TestMount(path, handle);
        // Closing the only handle to the connection aborts it: from now on every access fails.
        handle.Dispose();
        return new TestMount(path, null);
    }

    public void Dispose()
    {
        Umount2(Path, MntDetach);
        fuse?.Dispose();
    }

    private static void Check(int result, string what, string path)
    {
        if (result != 0)
            throw new InvalidOperationException(
                $"cannot {what}-mount {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}; these tests need root with CAP_SYS_ADMIN and /dev/fuse");
    }

    [DllImport("libc", EntryPoint = "mount", SetLastError = true)]
    private static extern int Mount(string? source, string target, string? type, ulong flags, string? data);

    [DllImport("libc", EntryPoint = "umount2", SetLastError = true)]
    private static extern int Umount2(string target, int flags);
}
