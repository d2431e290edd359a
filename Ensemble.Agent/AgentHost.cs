using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Ensemble.Hosting;

namespace Ensemble.Agent;

/// <summary>
/// The Ensemble.Agent process: one cluster node with the roles it is given. Flags override ENSEMBLE_*
/// environment variables, which override the HOCON files in hocon/, which override the library defaults.
/// </summary>
public static class AgentHost
{
    public const int ExitOk = 0;
    public const int ExitUsage = 2;
    public const int ExitStartFailed = 1;

    private const string Usage = """
        usage: Ensemble.Agent --data-dir DIR [options]

          --data-dir DIR       where the store, journal, formula storage and machines live   (ENSEMBLE_DATA_DIR)
          --environment NAME   the environment's name                       (ENSEMBLE_ENVIRONMENT, default local)
          --roles LIST         controller,agent | controller | agent         (ENSEMBLE_ROLES, default controller,agent)
          --machine NAME       the machine this agent serves                 (ENSEMBLE_MACHINE, default machine-0)
          --host ADDRESS       address to bind                               (ENSEMBLE_HOST, default 127.0.0.1)
          --port N             port to bind, 0 for a free one                (ENSEMBLE_PORT, default 0)
          --config DIR         directory of the node's HOCON files           (ENSEMBLE_CONFIG, default hocon/ beside the program)
          --root PATH          the topology's root in the store               (ENSEMBLE_ROOT, HOCON ensemble.root, default /ensemble)
          --zookeeper SERVERS  host:port[,host:port...] of a ZooKeeper ensemble (ENSEMBLE_ZOOKEEPER, HOCON ensemble.zookeeper.servers;
                               default: the embedded store in the data directory)
          --ready-file PATH    once the node answers, write its address and contact point there as JSON
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        Dictionary<string, string> flags;
        try
        {
            flags = ParseFlags(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"Ensemble.Agent: {ex.Message}");
            Console.Error.WriteLine(Usage);
            return ExitUsage;
        }
        if (flags.ContainsKey("help"))
        {
            Console.WriteLine(Usage);
            return ExitOk;
        }

        string? Get(string flag, string variable) =>
            flags.TryGetValue(flag, out var value) ? value : Environment.GetEnvironmentVariable(variable);

        var dataDirectory = Get("data-dir", "ENSEMBLE_DATA_DIR");
        if (string.IsNullOrWhiteSpace(dataDirectory))
        {
            Console.Error.WriteLine("Ensemble.Agent: no data directory given; pass --data-dir DIR or set ENSEMBLE_DATA_DIR.");
            return ExitUsage;
        }
        var roles = (Get("roles", "ENSEMBLE_ROLES") ?? "controller,agent")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        if (roles.Count == 0 || roles.Any(r => r is not (NodeOptions.ControllerRole or NodeOptions.AgentRole)))
        {
            Console.Error.WriteLine($"Ensemble.Agent: roles must be 'controller', 'agent' or both, not '{string.Join(",", roles)}'.");
            return ExitUsage;
        }
        var portText = Get("port", "ENSEMBLE_PORT") ?? "0";
        if (!int.TryParse(portText, out var port) || port is < 0 or > 65535)
        {
            Console.Error.WriteLine($"Ensemble.Agent: port '{portText}' is not a port number; pass 0 for a free one.");
            return ExitUsage;
        }
        var configDirectory = Get("config", "ENSEMBLE_CONFIG") ?? Path.Combine(AppContext.BaseDirectory, "hocon");

        var options = new NodeOptions(
            Path.GetFullPath(dataDirectory),
            Get("environment", "ENSEMBLE_ENVIRONMENT") ?? "local",
            roles,
            Get("machine", "ENSEMBLE_MACHINE") ?? "machine-0",
            Get("host", "ENSEMBLE_HOST") ?? "127.0.0.1",
            port,
            Get("zookeeper", "ENSEMBLE_ZOOKEEPER") is { Length: > 0 } zookeeper ? zookeeper : null);

        EnsembleNode node;
        try
        {
            var nodeConfig = LoadNodeConfig(configDirectory, roles);
            if (Get("root", "ENSEMBLE_ROOT") is { Length: > 0 } root)
                nodeConfig = ConfigurationFactory.ParseString($"ensemble.root = \"{root}\"").WithFallback(nodeConfig);
            node = await EnsembleNode.StartAsync(options, nodeConfig);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Ensemble.Agent: the node did not start: {ex.GetBaseException().Message}");
            return ExitStartFailed;
        }

        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            _ = CoordinatedShutdown.Get(node.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        };
        Console.WriteLine($"Ensemble.Agent: environment '{options.Environment}' node {node.Address} with roles {string.Join(",", roles)} is up; contact point {node.ContactPoint}");
        if (flags.TryGetValue("ready-file", out var readyFile)) WriteReadyFile(readyFile, node);

        await node.WhenTerminated;
        await node.DisposeAsync();
        Console.WriteLine("Ensemble.Agent: stopped");
        return ExitOk;
    }

    /// <summary>ensemble.conf, then persistence and the role files over it; files that are absent are skipped.</summary>
    public static Config LoadNodeConfig(string directory, IReadOnlySet<string> roles)
    {
        var files = new List<string> { "ensemble.conf", "persistence-sqlite.conf" };
        if (roles.Contains(NodeOptions.ControllerRole)) files.Add("controller.conf");
        if (roles.Contains(NodeOptions.AgentRole)) files.Add("agent.conf");
        var config = Config.Empty;
        foreach (var file in files)
        {
            var path = Path.Combine(directory, file);
            if (File.Exists(path)) config = ConfigurationFactory.ParseString(File.ReadAllText(path)).WithFallback(config);
        }
        return config;
    }

    private static void WriteReadyFile(string path, EnsembleNode node)
    {
        var ready = new Dictionary<string, object>
        {
            ["address"] = node.Address.ToString(),
            ["contact"] = node.ContactPoint,
            ["pid"] = Environment.ProcessId,
        };
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(ready));
        File.Move(temp, path, overwrite: true);
    }

    private static Dictionary<string, string> ParseFlags(string[] args)
    {
        var flags = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h") { flags["help"] = ""; continue; }
            if (!arg.StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{arg}'");
            var name = arg[2..];
            if (name is not ("data-dir" or "environment" or "roles" or "machine" or "host" or "port" or "config" or "ready-file" or "zookeeper" or "root"))
                throw new ArgumentException($"unknown option '{arg}'");
            if (i + 1 >= args.Length) throw new ArgumentException($"option '{arg}' needs a value");
            flags[name] = args[++i];
        }
        return flags;
    }
}
