using Ensemble.Topology;

namespace Ensemble.Units;

/// <summary>Where a unit lives on its machine: the formula directory is replaced on upgrade, the data directory never is.</summary>
public sealed record UnitPaths(string Root)
{
    public static UnitPaths For(string unitsRoot, string unit) => new(Path.Combine(unitsRoot, UnitNames.DirectoryName(unit)));

    /// <summary>The unit's directory on <paramref name="machine"/> of a node whose data directory is <paramref name="dataDirectory"/>.</summary>
    public static UnitPaths On(string dataDirectory, string machine, string unit) => For(UnitsDirectory(MachineDirectory(dataDirectory, machine)), unit);

    /// <summary>A machine's directory in a node's data directory: <c>machines/&lt;machine&gt;</c>.</summary>
    public static string MachineDirectory(string dataDirectory, string machine) => Path.Combine(dataDirectory, "machines", machine);

    /// <summary>Where a machine keeps its units: <c>&lt;machine directory&gt;/units</c>.</summary>
    public static string UnitsDirectory(string machineDirectory) => Path.Combine(machineDirectory, "units");

    public string FormulaDirectory => Path.Combine(Root, "formula");
    public string DataDirectory => Path.Combine(Root, "data");
    public string LogPath => Path.Combine(Root, "unit.log");
    public string StateFile => Path.Combine(Root, "state.json");

    /// <summary>The pid and start time of the hook running now, so a successor agent can end an orphaned run.</summary>
    public string HookProcessFile => Path.Combine(Root, "hook.pid");

    /// <summary>The next formula is unpacked here, beside the current one, then swapped in.</summary>
    public string StagingDirectory => Path.Combine(Root, "formula.new");

    /// <summary>The previous formula between the two renames of a swap.</summary>
    public string RetiredDirectory => Path.Combine(Root, "formula.old");
}
