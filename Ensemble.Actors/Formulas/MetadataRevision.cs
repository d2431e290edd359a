using System.Globalization;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>Changes the top-level revision of a metadata.yaml text while keeping every other byte as the author wrote it.</summary>
internal static class MetadataRevision
{
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// Replaces the value of the top-level <c>revision:</c> key with <paramref name="revision"/>; when there is no
    /// value and <paramref name="appendWhenMissing"/> is set, appends a <c>revision: N</c> line. The text is parsed
    /// under the same caps as when the formula was loaded, since it may have changed since.
    /// </summary>
    /// <exception cref="FormulaValidationException">The file breaks a YAML rule (encoding, size of its expansion, syntax).</exception>
    public static byte[] Rewrite(byte[] original, int revision, bool appendWhenMissing, string directory, FormulaLimits limits)
    {
        var problems = new List<FormulaProblem>();
        var text = FormulaYaml.Decode(original, FormulaLoader.MetadataFile, problems);
        var root = text is null ? null : FormulaYaml.ParseText(text, FormulaLoader.MetadataFile, limits, problems, out _);
        if (problems.Count > 0) throw new FormulaValidationException(directory, problems);

        var hasBom = original.AsSpan().StartsWith(Bom);
        var number = revision.ToString(CultureInfo.InvariantCulture);
        var node = root is YamlMappingNode map ? YamlDocument.Get(map, "revision") : null;

        string rewritten;
        if (node is YamlScalarNode scalar && !YamlDocument.IsNull(scalar))
        {
            var start = (int)scalar.Start.Index;
            var end = (int)scalar.End.Index;
            rewritten = text![..start] + number + text[end..];
        }
        else if (appendWhenMissing && node is null)
        {
            var separator = text!.Length == 0 || text.EndsWith('\n') ? "" : "\n";
            rewritten = text + separator + "revision: " + number + "\n";
        }
        else
        {
            return original;
        }

        var body = Encoding.UTF8.GetBytes(rewritten);
        return hasBom ? [.. Bom, .. body] : body;
    }
}
