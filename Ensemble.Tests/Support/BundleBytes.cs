using Ensemble.Formulas;

namespace Ensemble.Tests.Support;

/// <summary>Tests look at small bundles whole; the product only ever streams them.</summary>
public static class BundleBytes
{
    public static byte[] ReadBytes(this FormulaBundle bundle) => File.ReadAllBytes(bundle.Path);

    /// <summary>A bundle of other bytes claiming <paramref name="claimed"/>'s identity and sha256, in a file beside it.</summary>
    public static FormulaBundle WithBytes(this FormulaBundle claimed, byte[] bytes)
    {
        var path = claimed.Path + ".altered-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllBytes(path, bytes);
        return new FormulaBundle(claimed.Id, path, claimed.Sha256, bytes.Length, ownsFile: true);
    }
}
