using Xunit;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// Deployed units are compared with the repository by bundle sha256, so packing must give the bytes it always gave.
/// The hashes below were produced by the packer as it was before it streamed (whole archive in memory, one
/// compressor write); the formula has files over a MiB, compressible and not, so the streamed path is exercised.
/// </summary>
public sealed class PinnedBundleTests : IDisposable
{
    private readonly FormulaScratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Bundles_keep_the_hashes_they_had_before_packing_streamed()
    {
        var formula = FormulaLoader.Load(Write(scratch.Root));

        Assert.Equal("bd157dfefdba8c5c8d2d17e4ce43e1695c36556516502431dc524d37826afe90", FormulaPacker.Pack(formula).Sha256);
        Assert.Equal("c84579edeeca637defa6acc46facc60b634648e50fb5faccc2ffdb13f3be35ce", FormulaPacker.Pack(formula, 8).Sha256);
    }

    /// <summary>Writes the same formula every time: text, a compressible and an incompressible file over a MiB, nesting, modes.</summary>
    private static string Write(string root)
    {
        var dir = Path.Combine(root, "pinned");
        Directory.CreateDirectory(Path.Combine(dir, "hooks"));
        Directory.CreateDirectory(Path.Combine(dir, "files", "deep", "er"));
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"), "name: pinned\nrevision: 3\nsummary: a formula whose bundle hash is pinned\nprovides:\n  db: mysql\n");
        File.WriteAllText(Path.Combine(dir, "config.yaml"), "options:\n  port:\n    type: int\n    default: 3306\n");
        File.WriteAllText(Path.Combine(dir, "hooks", "install"), "#!/bin/sh\necho install\n");
        File.WriteAllText(Path.Combine(dir, "files", "empty"), "");
        var random = new Random(20240601);
        var mixed = new byte[3 * 1024 * 1024 + 12345];
        for (var i = 0; i < mixed.Length; i++) mixed[i] = random.Next(8) == 0 ? (byte)random.Next(256) : (byte)(i % 251);
        File.WriteAllBytes(Path.Combine(dir, "files", "deep", "er", "mixed.bin"), mixed);
        var noise = new byte[1536 * 1024 + 7];
        random.NextBytes(noise);
        File.WriteAllBytes(Path.Combine(dir, "files", "noise.bin"), noise);

        // Modes are part of the bundle; pin them rather than inherit the umask.
        foreach (var path in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories))
            FormulaScratch.SetMode(path, Directory.Exists(path) ? FormulaScratch.Executable : FormulaScratch.Plain);
        FormulaScratch.SetMode(Path.Combine(dir, "hooks", "install"), FormulaScratch.Executable);
        FormulaScratch.SetMode(Path.Combine(dir, "files", "noise.bin"), (UnixFileMode)0b110_100_000);
        return dir;
    }
}
