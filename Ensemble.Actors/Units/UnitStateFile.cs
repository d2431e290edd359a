using System.Text.Json;
using System.Text.Json.Serialization;
using Ensemble.Formulas;

namespace Ensemble.Units;

/// <summary>The unit's lifecycle state on the agent's disk, replaced atomically on every transition.</summary>
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
        try
        {
            state = JsonSerializer.Deserialize<UnitState>(File.ReadAllBytes(paths.StateFile), Json);
        }
        catch (JsonException ex)
        {
            throw new UnitStateFileException(paths.StateFile, $"it is not valid JSON ({ex.Message})");
        }
        if (state is null) throw new UnitStateFileException(paths.StateFile, "it is empty");
        if (Invalid(state, paths) is { } problem) throw new UnitStateFileException(paths.StateFile, problem);
        return state;
    }

    public static void Save(UnitPaths paths, UnitState state)
    {
        Directory.CreateDirectory(paths.Root);
        var temp = paths.StateFile + ".tmp";
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(state, Json));
        File.Move(temp, paths.StateFile, overwrite: true);
    }

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
