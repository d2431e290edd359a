using System.Text.Json;
using Ensemble.Tests.EndToEnd;
using Xunit;
using Xunit.Abstractions;

namespace Ensemble.Tests.Configuration;

/// <summary>`ensemble set`, `ensemble get` and `deploy --config` from a terminal: the installed command against a real node process.</summary>
public sealed class ConfigCommandLineTests(LocalEnvironmentProcess env, ITestOutputHelper output) : IClassFixture<LocalEnvironmentProcess>
{
    private const string ConfigYaml = """
        options:
          title: {type: string, default: hello, description: The page title}
          port: {type: int, default: 8080}

        """;

    private async Task<CommandResult> Run(params string[] args)
    {
        var result = await env.Ensemble.RunAsync(args);
        output.WriteLine($"$ ensemble {string.Join(' ', args)}\n{result}");
        Assert.False(result.HasStackTrace, result.ToString());
        return result;
    }

    private async Task<CommandResult> Ok(params string[] args)
    {
        var result = await Run(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private async Task<string> Refused(int exitCode, params string[] args)
    {
        var result = await Run(args);
        Assert.Equal(exitCode, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, result.ToString());
        Assert.StartsWith("ensemble: ", lines[0]);
        return lines[0];
    }

    private void WriteFormula(string name) =>
        TestFormulas.Write(env.Repository, name, 1, [.. TestFormulas.StandardHooks, "config-changed"],
            new Dictionary<string, string> { ["config.yaml"] = ConfigYaml });

    [Fact]
    public async Task Set_and_get_from_the_command_line()
    {
        WriteFormula("blog");
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "blog");

        var set = await Ok("set", "-e", "e2e", "blog", "port=81", "title=My blog");
        Assert.Contains("set port, title of 'blog'", set.Stdout);

        var json = JsonDocument.Parse((await Ok("get", "-e", "e2e", "--format", "json", "blog")).Stdout).RootElement;
        var options = json.GetProperty("options");
        Assert.Equal(81, options.GetProperty("port").GetProperty("value").GetInt64());
        Assert.True(options.GetProperty("port").GetProperty("set").GetBoolean());
        Assert.Equal(8080, options.GetProperty("port").GetProperty("default").GetInt64());
        Assert.Equal("My blog", options.GetProperty("title").GetProperty("value").GetString());
        Assert.Equal(1, json.GetProperty("version").GetInt32());

        var table = await Ok("get", "-e", "e2e", "blog");
        Assert.Contains("port", table.Stdout);
        Assert.Contains("The page title", table.Stdout);
        var yaml = (await Ok("get", "-e", "e2e", "--format", "yaml", "blog")).Stdout;
        Assert.Contains("    value: 81\n", yaml);
        Assert.Contains("    description: null\n", yaml);

        Assert.Contains("option 'port' of service 'blog' is an int, and 'eighty' is not", await Refused(2, "set", "-e", "e2e", "blog", "port=eighty"));
        Assert.Contains("has no option 'colour'; its options are port, title", await Refused(2, "set", "-e", "e2e", "blog", "colour=red"));
        Assert.Contains("'port' is not an option setting", await Refused(2, "set", "-e", "e2e", "blog", "port"));
        Assert.Contains("service 'nosuch' is not deployed", await Refused(3, "get", "-e", "e2e", "nosuch"));
    }

    [Fact]
    public async Task Deploy_with_a_bad_config_file_deploys_nothing()
    {
        WriteFormula("shop");
        var file = Path.Combine(env.Root, "shop-config.yaml");
        File.WriteAllText(file, "shop:\n  port: eighty\n");
        Assert.Contains("option 'port'", await Refused(2, "deploy", "-e", "e2e", "--repository", env.Repository, "--config", file, "shop"));
        File.WriteAllText(file, "shop: [unclosed");
        Assert.Contains($"config file {file} is not valid YAML", await Refused(2, "deploy", "-e", "e2e", "--repository", env.Repository, "--config", file, "shop"));
        var status = JsonDocument.Parse((await Ok("status", "-e", "e2e", "--format", "json")).Stdout).RootElement;
        Assert.False(status.GetProperty("services").TryGetProperty("shop", out _));

        File.WriteAllText(file, "shop:\n  port: 81\nother:\n  x: 1\n");
        await Ok("deploy", "-e", "e2e", "--repository", env.Repository, "--config", file, "shop");
        var json = JsonDocument.Parse((await Ok("get", "-e", "e2e", "--format", "json", "shop")).Stdout).RootElement;
        Assert.Equal(81, json.GetProperty("options").GetProperty("port").GetProperty("value").GetInt64());
    }
}
