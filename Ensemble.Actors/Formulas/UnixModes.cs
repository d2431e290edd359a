namespace Ensemble.Formulas;

/// <summary>Unix permission bits of formula files; formulas are only deployed to Unix machines.</summary>
internal static class UnixModes
{
    /// <summary>Only rwx bits travel: setuid, setgid and sticky bits have no business in a formula.</summary>
    public const UnixFileMode PermissionMask = (UnixFileMode)0b111_111_111;

    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static UnixFileMode Get(string path)
    {
        // Windows has no modes; treat everything as rwxr-xr-x so local tooling still works there.
        if (OperatingSystem.IsWindows()) return (UnixFileMode)0b111_101_101;
        return File.GetUnixFileMode(path) & PermissionMask;
    }

    public static void Set(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows()) return;
        File.SetUnixFileMode(path, mode & PermissionMask);
    }

    public static bool IsExecutable(UnixFileMode mode) => (mode & AnyExecute) != 0;
}
