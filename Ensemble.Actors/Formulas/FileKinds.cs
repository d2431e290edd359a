using System.Runtime.InteropServices;

namespace Ensemble.Formulas;

internal enum FileKind { Missing, Regular, Directory, Link, Special }

/// <summary>
/// What kind of file a path is, without following links. .NET reports fifos, sockets and devices as ordinary
/// files, and opening a fifo blocks until someone writes to it, so formula code must ask before it opens.
/// </summary>
internal static class FileKinds
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const ushort TypeMask = 0xF000, TypeRegular = 0x8000, TypeDirectory = 0x4000, TypeLink = 0xA000;
    private const int NoEntry = 2, NotDirectory = 20, AccessDenied = 13;

    /// <exception cref="UnauthorizedAccessException">Permission denied on the path or a directory above it.</exception>
    /// <exception cref="IOException">Any other error; HResult carries the errno.</exception>
    public static FileKind Of(string path)
    {
        if (!OperatingSystem.IsLinux()) return Portable(path);
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, out var buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno switch
            {
                NoEntry or NotDirectory => FileKind.Missing,
                AccessDenied => throw new UnauthorizedAccessException($"Access to the path '{path}' is denied."),
                _ => throw new IOException($"{Marshal.GetPInvokeErrorMessage(errno)} : '{path}'", errno),
            };
        }
        return (buffer.Mode & TypeMask) switch
        {
            TypeRegular => FileKind.Regular,
            TypeDirectory => FileKind.Directory,
            TypeLink => FileKind.Link,
            _ => FileKind.Special,
        };
    }

    // Elsewhere .NET cannot tell a fifo from a file; formulas are only deployed from and to Linux.
    private static FileKind Portable(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return FileKind.Link;
        if (Directory.Exists(path)) return FileKind.Directory;
        return info.Exists ? FileKind.Regular : FileKind.Missing;
    }

    // statx's buffer has one layout on every architecture, unlike struct stat.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)] public ushort Mode;
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directoryFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out StatxBuffer buffer);
}
