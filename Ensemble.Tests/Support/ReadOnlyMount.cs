using System.Diagnostics;

namespace Ensemble.Tests.Support;

/// <summary>
/// Makes a directory read-only for everyone, root included, as a disk remounted read-only after errors
/// would be: a read-only bind mount of the directory onto itself. Tests run as root, which file modes do
/// not stop. Dispose removes the mount, also when the test failed.
/// </summary>
public sealed class ReadOnlyMount : IDisposable
{
    private bool _mounted;

    public ReadOnlyMount(string directory)
    {
        Directory = Path.GetFullPath(directory);
        Run("mount", "--bind", Directory, Directory);
        _mounted = true;
        try
        {
            Run("mount", "-o", "remount,ro,bind", Directory);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }

    public void Dispose()
    {
        if (!_mounted) return;
        _mounted = false;
        // A process still inside the directory keeps a plain umount from finishing; detach it then.
        if (!TryRun("umount", Directory)) Run("umount", "-l", Directory);
    }

    private static void Run(params string[] command)
    {
        if (!TryRun(command, out var error))
            throw new InvalidOperationException($"'{string.Join(' ', command)}' failed: {error} (tests of disk faults need root and mount)");
    }

    private static bool TryRun(params string[] command) => TryRun(command, out _);

    private static bool TryRun(string[] command, out string error)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in command[1..]) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}
