using System.CommandLine;
using Ensemble.Cli.Output;
using Ensemble.Configuration;
using Ensemble.Topology;
using static Ensemble.Cli.Commands.CommandSupport;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli.Commands;

/// <summary>set and get: a service's configuration (the options of its formula's config.yaml).</summary>
public static class ConfigCommands
{
    public static Command Set()
    {
        var service = new Argument<string>("service");
        var pairs = new Argument<string[]>("key=value")
        {
            Description = "Options to set, e.g. port=8080; 'key=' resets an option to its default.",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("set", "Set options of <service>'s configuration; its units run config-changed.") { service, pairs };
        command.SetAction(parsed =>
        {
            var name = ServiceName(parsed.GetValue(service)!);
            var settings = ConfigValues.ParsePairs(parsed.GetValue(pairs)!, out var problem)
                ?? throw new CliException(ExitCodes.Usage, problem! + ".");
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new SetConfig(name, settings));
                if (reply is not ConfigSet set) throw ControllerClient.Rejected(reply);
                Console.WriteLine(set.Changed.Count == 0
                    ? $"'{name}' already has that configuration; nothing changed"
                    : $"set {string.Join(", ", set.Changed)} of '{name}'; its units run config-changed");
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    public static Command Get()
    {
        var service = new Argument<string>("service");
        var format = FormatOption();
        var command = new Command("get", "Show <service>'s options: type, default, the value in effect and whether it was set.") { format, service };
        command.SetAction(parsed =>
        {
            var name = ServiceName(parsed.GetValue(service)!);
            return WithClientAsync(parsed, async client =>
            {
                var reply = await client.AskAsync(new GetConfig(name));
                if (reply is not ConfigView view) throw ControllerClient.Rejected(reply);
                switch (parsed.GetValue(format))
                {
                    case "json": Console.Write(ConfigFormat.Json(view)); break;
                    case "yaml": Console.Write(ConfigFormat.Yaml(view)); break;
                    default: ConfigFormat.Table(view, Terminal.Stdout); break;
                }
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>deploy --config FILE: the settings for <paramref name="service"/>, or a usage error naming the file and the fix.</summary>
    public static IReadOnlyDictionary<string, string> ReadConfigFile(string file, string service)
    {
        var path = Path.GetFullPath(file);
        var text = ReadNamedFile(path, "config file", "pass an existing file with --config", "make it readable and deploy again");
        return ConfigFile.Parse(text, path, service, out var problem) ?? throw new CliException(ExitCodes.Usage, problem! + ".");
    }

    private static string ServiceName(string name) =>
        UnitNames.IsValidServiceName(name) ? name
            : throw new CliException(ExitCodes.Usage, $"'{name}' is not a service name; use lowercase letters, digits and '-', starting with a letter.");
}
