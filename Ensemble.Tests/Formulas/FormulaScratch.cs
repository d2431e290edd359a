using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

/// <summary>A temporary directory per test, with helpers to write formulas into it.</summary>
internal sealed class FormulaScratch : IDisposable
{
    public const UnixFileMode Executable = (UnixFileMode)0b111_101_101;
    public const UnixFileMode Plain = (UnixFileMode)0b110_100_100;

    public string Root { get; } = Directory.CreateTempSubdirectory("ensemble-formulas-").FullName;

    public string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static void Write(string path, string content, UnixFileMode? mode = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        if (mode is { } m) SetMode(path, m);
    }

    // Formulas only deploy to Unix; on Windows modes are meaningless and these helpers do nothing.
    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
    }

    public static UnixFileMode Mode(string path) =>
        OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(path) & (UnixFileMode)0b111_111_111;

    /// <summary>Writes a minimal valid formula at root/relative (the last segment is the name) with an install hook.</summary>
    public string WriteFormula(string relative, int revision, string install = "#!/bin/sh\necho install\n")
    {
        var dir = PathOf(relative.Split('/'));
        var name = Path.GetFileName(dir);
        Write(Path.Combine(dir, "metadata.yaml"), $"name: {name}\nrevision: {revision}\nsummary: test formula\ndescription: a formula for tests\n");
        Write(Path.Combine(dir, "hooks", "install"), install, Executable);
        return dir;
    }

    public static FormulaProblem Problem(FormulaValidationException e, string file, string field) =>
        Assert.Single(e.Problems, p => p.File == file && p.Field == field);

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}
