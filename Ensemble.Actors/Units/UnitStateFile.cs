using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ensemble.Units;

/// <summary>The unit's lifecycle state on the agent's disk, replaced atomically on every transition.</summary>
public static class UnitStateFile
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
    };

    public static UnitState? Load(UnitPaths paths)
    {
        if (!File.Exists(paths.StateFile)) return null;
        return JsonSerializer.Deserialize<UnitState>(File.ReadAllBytes(paths.StateFile), Json);
    }

    public static void Save(UnitPaths paths, UnitState state)
    {
        Directory.CreateDirectory(paths.Root);
        var temp = paths.StateFile + ".tmp";
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(state, Json));
        File.Move(temp, paths.StateFile, overwrite: true);
    }
}
