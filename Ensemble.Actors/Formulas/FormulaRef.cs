namespace Ensemble.Formulas;

/// <summary>A stored formula revision as units and services reference it: identity plus content hash (the storage key).</summary>
public sealed record FormulaRef(FormulaId Id, string Sha256)
{
    public override string ToString() => $"{Id} (sha256 {Sha256[..Math.Min(12, Sha256.Length)]})";
}
