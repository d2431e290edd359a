using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>
/// The unit's lifecycle state on the agent's disk, replaced atomically on every transition. A save writes the new
/// state into <c>state.json.next</c> and then swaps the two files in one step (<c>renameat2</c> with
/// <c>RENAME_EXCHANGE</c>): <c>state.json</c> is always one whole state, the old or the new, whenever the agent is
/// killed, and no file is created or deleted per transition. (A write-and-rename allocated an inode and freed
/// another seven times per unit upgrade, and ext4 scans past every recently freed inode to allocate a new one:
/// most of the agent's kernel time in a large upgrade, docs/performance.md.) Where the file system cannot
/// exchange, a save falls back to write-and-rename.
/// </summary>
public static class UnitStateFile
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(allowIntegerValues: false) },
    };

    /// <summary>The saved state, or null when the unit has none yet.</summary>
    /// <exception cref="UnitStateFileException">The file is there but is not a state this unit can resume from.</exception>
    public static UnitState? Load(UnitPaths paths)
    {
        if (!File.Exists(paths.StateFile)) return null;
        UnitState? state;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                state = JsonSerializer.Deserialize<UnitState>(ReadToEnd(paths.StateFile), Json);
                break;
            }
            // A reader beside a running agent may have opened the file just before a save swapped it out and read it
            // while a later save rewrote it (empty, or part written): the file the name points to now is whole, so
            // it reads again. A damaged file stays damaged however often it is read.
            catch (JsonException) when (attempt < ReadAttempts) { }
            catch (JsonException ex)
            {
                throw new UnitStateFileException(paths.StateFile, $"it is not valid JSON ({ex.Message})");
            }
        }
        if (state is null) throw new UnitStateFileException(paths.StateFile, "it is empty");
        if (Invalid(state, paths) is { } problem) throw new UnitStateFileException(paths.StateFile, problem);
        return state;
    }

    /// <summary>Reads of a file that did not parse before it counts as damaged (each reads a few hundred bytes).</summary>
    private const int ReadAttempts = 100;

    /// <summary>The file's bytes up to its end as read now (not the size a stat saw a moment before).</summary>
    private static byte[] ReadToEnd(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    public static void Save(UnitPaths paths, UnitState state)
    {
        Directory.CreateDirectory(paths.Root);
        var next = paths.StateFile + ".next";
        File.WriteAllBytes(next, JsonSerializer.SerializeToUtf8Bytes(state, Json));
        if (File.Exists(paths.StateFile) && TryExchange(next, paths.StateFile)) return;
        File.Move(next, paths.StateFile, overwrite: true);
    }

    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;
    private static volatile bool _exchangeRefused = !OperatingSystem.IsLinux();

    /// <summary>
    /// Swaps the two files atomically; false when they cannot be swapped: <paramref name="b"/> went away meanwhile
    /// (the caller renames instead), or the file system or kernel refuses the call — then this process renames from
    /// now on (a node keeps all its machines' data on one file system).
    /// </summary>
    private static bool TryExchange(string a, string b)
    {
        if (_exchangeRefused) return false;
        if (RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        // ENOENT: the state file was removed after the caller looked.
        if (errno == 2) return false;
        // EINVAL: the file system does not support the flag; ENOSYS: the kernel lacks the call.
        if (errno is 22 or 38)
        {
            _exchangeRefused = true;
            return false;
        }
        throw new IOException($"{Marshal.GetPInvokeErrorMessage(errno)} : '{b}'", errno);
    }

    [DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    private static extern int RenameAt2(int oldDirectory, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath,
        int newDirectory, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath, uint flags);

    /// <summary>What makes a state impossible to resume from, or null.</summary>
    private static string? Invalid(UnitState state, UnitPaths paths)
    {
        if (string.IsNullOrEmpty(state.Unit) || Topology.UnitNames.DirectoryName(state.Unit) != Path.GetFileName(paths.Root))
            return $"it names unit '{state.Unit}', not the unit of its directory";
        if (!Enum.IsDefined(state.Phase) || !Enum.IsDefined(state.Operation)) return "its phase or operation is unknown";
        if (state.Current is { } current && !IsSha256(current.Sha256)) return "its current formula has no valid sha256";
        if (state.Target is { } target && !IsSha256(target.Sha256)) return "its target formula has no valid sha256";
        if (state.IsError != (state.FailedStep is not null)) return "its error state and failed step disagree";
        if (state.FailedStep is { } failed && !UnitLifecycle.CanFail(state with { Phase = failed })) return $"its failed step {failed} is not a step";
        if (state.Operation != UnitOperation.None && state.Target is null) return "it has an operation but no target formula";
        return state.Phase switch
        {
            UnitPhase.Pending when state.Operation != UnitOperation.None => "a pending unit cannot have an operation",
            UnitPhase.Running or UnitPhase.Stopping or UnitPhase.UpgradingFormula or UnitPhase.Downloading or UnitPhase.Extracting
                when state.Current is null => $"a unit in {state.Phase} must have a current formula",
            _ => null,
        };
    }

    private static bool IsSha256(string? text) => text is { Length: 64 } && text.All(char.IsAsciiHexDigit);
}

/// <summary>A unit's state file that cannot be resumed from: the message names the file and why.</summary>
public sealed class UnitStateFileException(string path, string problem)
    : Exception($"the unit state file {path} cannot be used: {problem}; restore it from a backup, or remove the unit and add a new one")
{
    public string Path { get; } = path;
}
