using Ensemble.Formulas;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Configuration;

/// <summary>
/// The file `deploy --config FILE` reads, in Juju's format: settings per service, <c>&lt;service&gt;: {option: value}</c>.
/// Sections for other services are ignored, so one file may serve several deploys.
/// </summary>
public static class ConfigFile
{
    /// <summary>
    /// The settings for <paramref name="service"/> as option → text (a null value resets the option, as `set key=`), or
    /// null and one sentence naming the file and the fix.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? Parse(string text, string path, string service, out string? problem)
    {
        problem = null;
        var problems = new List<FormulaProblem>();
        var root = FormulaYaml.ParseText(text, path, FormulaLimits.Default, problems, out var failed);
        if (failed || problems.Count > 0)
        {
            problem = $"config file {path} is not valid YAML ({problems.FirstOrDefault()?.Message.Split(';')[0] ?? "unreadable"}); fix it and deploy again";
            return null;
        }
        if (root is not YamlMappingNode services)
        {
            problem = $"config file {path} must map service names to their settings, e.g. '{service}: {{option: value}}'; fix it and deploy again";
            return null;
        }
        if (!services.Children.TryGetValue(new YamlScalarNode(service), out var section))
        {
            problem = $"config file {path} has no settings for service '{service}'; add a '{service}:' section, or deploy without --config";
            return null;
        }
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        if (section is YamlScalarNode { Value: null or "" or "~" or "null" }) return pairs;
        if (section is not YamlMappingNode settings)
        {
            problem = $"the settings of '{service}' in config file {path} must be a mapping of option: value; fix it and deploy again";
            return null;
        }
        foreach (var (key, value) in settings.Children)
        {
            var name = (key as YamlScalarNode)?.Value;
            if (string.IsNullOrEmpty(name) || value is not YamlScalarNode scalar)
            {
                problem = $"the settings of '{service}' in config file {path} must be option: value pairs with plain values ('{name ?? key.ToString()}' is not); fix it and deploy again";
                return null;
            }
            var plain = scalar.Style is YamlDotNet.Core.ScalarStyle.Plain or YamlDotNet.Core.ScalarStyle.Any;
            pairs[name] = plain && scalar.Value is null or "~" or "null" or "Null" or "NULL" ? "" : scalar.Value ?? "";
        }
        return pairs;
    }
}
