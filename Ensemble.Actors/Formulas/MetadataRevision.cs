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
    /// value and <paramref name="appendWhenMissing"/> is set, appends a <c>revision: N</c> line.
    /// </summary>
    public static byte[] Rewrite(byte[] original, int revision, bool appendWhenMissing)
    {
        var hasBom = original.AsSpan().StartsWith(Bom);
        var text = Encoding.UTF8.GetString(original, hasBom ? Bom.Length : 0, original.Length - (hasBom ? Bom.Length : 0));
        var number = revision.ToString(CultureInfo.InvariantCulture);

        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        var map = stream.Documents.Count > 0 ? stream.Documents[0].RootNode as YamlMappingNode : null;
        var node = map is null ? null : YamlDocument.Get(map, "revision");

        string rewritten;
        if (node is YamlScalarNode scalar && !YamlDocument.IsNull(scalar))
        {
            var start = (int)scalar.Start.Index;
            var end = (int)scalar.End.Index;
            rewritten = text[..start] + number + text[end..];
        }
        else if (appendWhenMissing && node is null)
        {
            var separator = text.Length == 0 || text.EndsWith('\n') ? "" : "\n";
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
