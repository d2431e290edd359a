using Ensemble.Configuration;
using Ensemble.Formulas;
using Xunit;

namespace Ensemble.Tests.Configuration;

/// <summary>The rules of `ensemble set`, the effective configuration and carrying values over an upgrade, without actors.</summary>
public sealed class ConfigValuesTests
{
    private static readonly IReadOnlyList<ConfigOption> Options =
    [
        new("title", "string", "hello", "The page title"),
        new("port", "int", "8080", null),
        new("ratio", "float", null, null),
        new("debug", "boolean", "false", null),
    ];

    private static readonly IReadOnlyDictionary<string, object> Nothing = new Dictionary<string, object>();

    private static ConfigDecision.Accepted Accept(IReadOnlyDictionary<string, object> current, params (string Key, string Value)[] pairs) =>
        Assert.IsType<ConfigDecision.Accepted>(ConfigValues.Decide("web", Options, current, pairs.ToDictionary(p => p.Key, p => p.Value)));

    private static string Refuse(params (string Key, string Value)[] pairs) =>
        Assert.IsType<ConfigDecision.Refused>(ConfigValues.Decide("web", Options, Nothing, pairs.ToDictionary(p => p.Key, p => p.Value))).Reason;

    [Fact]
    public void Values_are_typed_by_their_option()
    {
        var accepted = Accept(Nothing, ("title", "Blog"), ("port", "-9223372036854775808"), ("ratio", "0.25"), ("debug", "True"));
        Assert.Equal("Blog", accepted.Values["title"]);
        Assert.Equal(long.MinValue, accepted.Values["port"]);
        Assert.Equal(0.25, accepted.Values["ratio"]);
        Assert.Equal(true, accepted.Values["debug"]);
        Assert.Equal(["debug", "port", "ratio", "title"], accepted.Changed);
    }

    [Fact]
    public void An_unknown_option_is_refused_naming_it_and_listing_the_options()
    {
        var reason = Refuse(("colour", "red"));
        Assert.Contains("'colour'", reason);
        Assert.Contains("debug, port, ratio, title", reason);
    }

    [Fact]
    public void A_formula_without_options_says_so()
    {
        var refused = Assert.IsType<ConfigDecision.Refused>(ConfigValues.Decide("web", [], Nothing, new Dictionary<string, string> { ["x"] = "1" }));
        Assert.Contains("declares no options", refused.Reason);
    }

    [Theory]
    [InlineData("port", "eighty", "int")]
    [InlineData("port", "1.5", "int")]
    [InlineData("port", "9223372036854775808", "int")]
    [InlineData("ratio", "half", "float")]
    [InlineData("ratio", "NaN", "float")]
    [InlineData("debug", "yes", "boolean")]
    [InlineData("debug", "1", "boolean")]
    public void A_value_of_the_wrong_type_is_refused_naming_the_option_the_type_and_the_value(string option, string value, string type)
    {
        var reason = Refuse(("title", "fine"), (option, value));
        Assert.Contains($"option '{option}'", reason);
        Assert.Contains(type, reason);
        Assert.Contains($"'{value}'", reason);
    }

    [Fact]
    public void A_value_or_a_configuration_too_large_for_the_store_is_refused()
    {
        Assert.Contains("over the limit of 65,536", Refuse(("title", new string('x', ConfigValues.MaxValueLength + 1))));
        IReadOnlyList<ConfigOption> many = Enumerable.Range(0, 10).Select(i => new ConfigOption($"o{i}", "string", null, null)).ToList();
        var pairs = many.ToDictionary(o => o.Name, _ => new string('x', ConfigValues.MaxValueLength));
        var refused = Assert.IsType<ConfigDecision.Refused>(ConfigValues.Decide("web", many, Nothing, pairs));
        Assert.Contains("would hold", refused.Reason);
    }

    [Fact]
    public void An_empty_value_resets_the_option_to_its_default()
    {
        var current = new Dictionary<string, object> { ["port"] = 9000L, ["title"] = "Blog" };
        var accepted = Accept(current, ("port", ""));
        Assert.False(accepted.Values.ContainsKey("port"));
        Assert.Equal("Blog", accepted.Values["title"]);
        Assert.Equal(["port"], accepted.Changed);
        Assert.Equal(8080L, ConfigValues.Effective(Options, accepted.Values)["port"]);
    }

    [Fact]
    public void Setting_what_is_already_set_changes_nothing()
    {
        var current = new Dictionary<string, object> { ["port"] = 9000L };
        Assert.Empty(Accept(current, ("port", "9000")).Changed);
        Assert.Empty(Accept(Nothing, ("ratio", "")).Changed);
    }

    [Fact]
    public void The_effective_configuration_overlays_set_values_on_defaults()
    {
        var effective = ConfigValues.Effective(Options, new Dictionary<string, object> { ["port"] = 81L, ["gone"] = "x" });
        Assert.Equal(new Dictionary<string, object?> { ["title"] = "hello", ["port"] = 81L, ["ratio"] = null, ["debug"] = false }, effective);
    }

    [Fact]
    public void An_upgrade_keeps_values_whose_option_remains_compatible_and_lists_the_rest()
    {
        IReadOnlyList<ConfigOption> next =
        [
            new("title", "string", null, null),
            new("port", "float", null, null),   // int → float: kept
            new("debug", "int", null, null),    // boolean → int: dropped
        ];
        var values = new Dictionary<string, object> { ["title"] = "Blog", ["port"] = 81L, ["debug"] = true, ["ratio"] = 0.5 };
        var (kept, dropped) = ConfigValues.Migrate(next, values);
        Assert.Equal(new Dictionary<string, object> { ["title"] = "Blog", ["port"] = 81.0 }, kept);
        Assert.Equal(["debug (now int)", "ratio (removed)"], dropped.Select(d => d.ToString()));
    }

    [Fact]
    public void A_float_option_reads_back_a_whole_number_stored_as_json()
    {
        var config = ServiceConfig.Of(3, new Dictionary<string, object> { ["ratio"] = 2.0, ["port"] = 7L, ["title"] = "t", ["debug"] = true });
        var json = System.Text.Json.JsonSerializer.Serialize(config, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        var back = System.Text.Json.JsonSerializer.Deserialize<ServiceConfig>(json, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!;
        var effective = ConfigValues.Effective(Options, back.Typed());
        Assert.Equal(2.0, effective["ratio"]);
        Assert.Equal(7L, effective["port"]);
        Assert.Equal(true, effective["debug"]);
        Assert.Equal(3, back.Version);
    }

    [Theory]
    [InlineData("port")]
    [InlineData("=1")]
    public void Arguments_that_are_not_key_value_are_refused(string argument)
    {
        Assert.Null(ConfigValues.ParsePairs([argument], out var problem));
        Assert.Contains("key=value", problem);
    }

    [Fact]
    public void Pairs_split_at_the_first_equals_sign_and_a_key_given_twice_is_refused()
    {
        Assert.Equal("a=b", ConfigValues.ParsePairs(["title=a=b"], out _)!["title"]);
        Assert.Equal("", ConfigValues.ParsePairs(["title="], out _)!["title"]);
        Assert.Null(ConfigValues.ParsePairs(["port=1", "port=2"], out var problem));
        Assert.Contains("'port' is given twice", problem);
    }
}
