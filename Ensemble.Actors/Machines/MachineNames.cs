namespace Ensemble.Machines;

/// <summary>Machine names become store paths, directory names and actor names: keep them plain.</summary>
public static class MachineNames
{
    /// <summary>The machine of a node started without --machine (a local environment's only machine).</summary>
    public const string Default = "machine-0";

    public const string Rule = "lowercase letters, digits and '-', starting with a letter, at most 64 characters";

    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= 64 } && char.IsAsciiLetterLower(name[0])
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    /// <summary>The first of machine-1, machine-2, … that is not taken.</summary>
    public static string NextFree(IReadOnlySet<string> taken)
    {
        for (var n = 1; ; n++)
        {
            var name = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"machine-{n}");
            if (!taken.Contains(name)) return name;
        }
    }
}
