using Ensemble.Configuration;
using Xunit;

namespace Ensemble.Tests.Configuration;

/// <summary>The file `deploy --config` reads: Juju's '&lt;service&gt;: {option: value}'.</summary>
public sealed class ConfigFileTests
{
    [Fact]
    public void The_section_of_the_service_is_read_and_others_are_ignored()
    {
        var pairs = ConfigFile.Parse("""
            web:
              title: "My blog"
              port: 81
              debug: true
              ratio: ~
            db:
              size: 3
            """, "/tmp/c.yaml", "web", out var problem);
        Assert.Null(problem);
        Assert.Equal(new Dictionary<string, string> { ["title"] = "My blog", ["port"] = "81", ["debug"] = "true", ["ratio"] = "" }, pairs);
    }

    [Theory]
    [InlineData("web: [unclosed", "not valid YAML")]
    [InlineData("- web", "must map service names")]
    [InlineData("db:\n  size: 3", "no settings for service 'web'")]
    [InlineData("web: 3", "must be a mapping")]
    [InlineData("web:\n  port: [1, 2]", "option: value pairs")]
    public void A_bad_file_is_refused_in_one_sentence_naming_it(string text, string expected)
    {
        Assert.Null(ConfigFile.Parse(text, "/tmp/c.yaml", "web", out var problem));
        Assert.Contains(expected, problem);
        Assert.Contains("/tmp/c.yaml", problem);
    }
}
