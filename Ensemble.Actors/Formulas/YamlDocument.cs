using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>Parses a formula YAML file into a node tree, turning syntax errors into problems that carry the line number.</summary>
internal static class YamlDocument
{
    /// <summary>Returns the root node (null for an empty file) or adds a problem and returns null.</summary>
    public static YamlNode? Parse(string text, string file, List<FormulaProblem> problems, out bool failed)
    {
        failed = false;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            failed = true;
            problems.Add(new FormulaProblem(file, "yaml",
                $"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {Innermost(e)}; fix the syntax and try again"));
            return null;
        }
        catch (ArgumentException e)
        {
            // Older parser paths report duplicate keys without a position.
            failed = true;
            problems.Add(new FormulaProblem(file, "yaml", $"invalid YAML: {e.Message}; fix the syntax and try again"));
            return null;
        }
    }

    // YamlException prefixes its message with the marks; the innermost message is the readable part.
    private static string Innermost(YamlException e)
    {
        Exception inner = e;
        while (inner.InnerException is YamlException next) inner = next;
        var message = inner is YamlException ye ? StripMarks(ye) : inner.Message;
        return message;
    }

    private static string StripMarks(YamlException e)
    {
        var text = e.Message;
        var marker = "): ";
        var at = text.StartsWith('(') ? text.IndexOf(marker, StringComparison.Ordinal) : -1;
        return at >= 0 ? text[(at + marker.Length)..] : text;
    }

    public static YamlNode? Get(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    /// <summary>True for a missing value or an explicit YAML null (<c>~</c>, <c>null</c> or nothing).</summary>
    public static bool IsNull(YamlNode? node) =>
        node is null || node is YamlScalarNode { Style: ScalarStyle.Plain } s && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ => "a scalar",
    };
}
