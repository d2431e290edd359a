using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>Small questions asked of a parsed formula YAML node tree.</summary>
internal static class YamlDocument
{
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
