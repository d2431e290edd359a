using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Ensemble.Hosting;
using Ensemble.Machines;

namespace Ensemble.Agent;

/// <summary>
/// The Ensemble.Agent process: one cluster node with the roles it is given. Flags override ENSEMBLE_*
/// environment variables, which override the HOCON files in hocon/, which override the library defaults.
/// A node the cluster downs or removes starts again by itself and rejoins (<see cref="NodeLoop"/>).
/// </summary>
public static class AgentHost
{
    public const int ExitOk = 0;
    public const int ExitStartFailed = 1;
    public const int ExitUsage = 2;
    /// <summary>The controller's join gate refused this node (wrong, missing or revoked token); it joined nothing.</summary>
    public const int ExitRefused = 3;

    private const string Usage = """
        usage: Ensemble.Agent --data-dir DIR [options]
               (installed with the ensemble command: ensemble node --data-dir DIR [options])

          --data-dir DIR       where the store, journal, formula storage and machines live   (ENSEMBLE_DATA_DIR)
          --environment NAME   the environment's name (a controller's; agents learn it)  (ENSEMBLE_ENVIRONMENT, default local)
          --roles LIST         controller,agent | controller | agent         (ENSEMBLE_ROLES, default controller,agent)
          --machine NAME       the machine this agent serves                 (ENSEMBLE_MACHINE, default machine-0)
          --join ADDR:PORT[,ADDR:PORT...]
                               the controllers to join through (an agent on another host): their join gate admits
                               the machine first, then the node joins their cluster      (ENSEMBLE_JOIN)
                               A controller needs no token: it joins the controllers it finds alive in ZooKeeper,
                               and those given here                                      (see 'ensemble enable-ha')
          --token TOKEN        the machine's join token, from 'ensemble add-machine'     (ENSEMBLE_TOKEN)
          --host ADDRESS       address to bind      (ENSEMBLE_HOST, default 127.0.0.1, or with --join the address
                               this host reaches the controller from)
          --public-host ADDRESS
                               address other nodes and the CLI are told, when it is not the one bound (NAT, 0.0.0.0)
                                                                              (ENSEMBLE_PUBLIC_HOST, default --host)
          --port N             port to bind, 0 for a free one                (ENSEMBLE_PORT, default 0)
          --config DIR         directory of the node's HOCON files           (ENSEMBLE_CONFIG, default hocon/ beside the program)
          --root PATH          the topology's root in the store               (ENSEMBLE_ROOT, HOCON ensemble.root, default /ensemble)
          --zookeeper SERVERS  host:port[,host:port...] of a ZooKeeper ensemble (ENSEMBLE_ZOOKEEPER, HOCON ensemble.zookeeper.servers;
                               default: the embedded store in the data directory; agents that join learn it from the controller)
          --journal CONNECTION a Npgsql connection string of the PostgreSQL database the controller journals to and keeps
                               formula bundles in, shared by several controllers    (ENSEMBLE_JOURNAL; default: SQLite
                               <data-dir>/journal.db and bundles in <data-dir>/formula-storage). Leave the password out:
                               it is read from PGPASSWORD or a passfile (~/.pgpass, or Passfile=PATH in the string)
          --ready-file PATH    once the node answers, write its address and contact point there as JSON

        exit codes: 0 stopped; 1 could not start (or no controller answered within a minute); 2 bad usage;
        3 refused by the controller (wrong, missing or revoked join token)
        """;

    private static readonly string[] Flags =
        ["data-dir", "environment", "roles", "machine", "join", "token", "host", "public-host", "port", "config", "ready-file", "zookeeper", "root", "journal"];

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
            flags.TryGetValue(flag, out var value) ? value : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } set ? set : null;

        NodeOptions options;
        try
        {
            options = Options(Get);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"Ensemble.Agent: {ex.Message}");
            return ExitUsage;
        }
        var configDirectory = Get("config", "ENSEMBLE_CONFIG") ?? Path.Combine(AppContext.BaseDirectory, "hocon");

        Config nodeConfig;
        try
        {
            nodeConfig = LoadNodeConfig(configDirectory, options.Roles, postgresJournal: options.Journal is not null);
            if (Get("root", "ENSEMBLE_ROOT") is { } root)
                nodeConfig = ConfigurationFactory.ParseString($"ensemble.root = \"{root}\"").WithFallback(nodeConfig);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Ensemble.Agent: the node's configuration in {configDirectory} cannot be read: {ex.GetBaseException().Message}");
            return ExitStartFailed;
        }

        // Not disposed: the ProcessExit handler below runs after RunAsync has returned, and cancels it then.
        var stop = new CancellationTokenSource();
        var loop = new NodeLoop(options, nodeConfig, text => Console.WriteLine($"Ensemble.Agent: {text}"));
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
            loop.Stop();
        };
        // SIGTERM: Akka's own hook runs the running incarnation's coordinated shutdown; the loop must not start another.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
        var roles = string.Join(",", options.Roles.Order(StringComparer.Ordinal));
        try
        {
            await loop.RunAsync((node, first) =>
            {
                var what = node.Options.PassesJoinGate
                    ? $"machine '{node.Options.Machine}' joined environment '{node.Options.Environment}': node {node.Address} with roles {roles} is up{(first ? "" : " again")}"
                    : $"environment '{node.Options.Environment}' node {node.Address} with roles {roles} is up{(first ? "" : " again")}; contact point {node.ContactPoint}";
                Console.WriteLine($"Ensemble.Agent: {what}");
                if (first && flags.TryGetValue("ready-file", out var readyFile)) WriteReadyFile(readyFile, node);
            }, stop.Token);
        }
        catch (JoinRefusedException ex)
        {
            Console.Error.WriteLine($"Ensemble.Agent: the controller refused machine '{options.Machine}': {ex.Message.TrimEnd('.')}; nothing was joined.");
            return ExitRefused;
        }
        catch (OperationCanceledException)
        {
            return ExitOk;
        }
        catch (Exception ex)
        {
            // Our own sentences name the thing and the fix; below them is only the driver's detail, which they quote.
            var reason = Chain(ex).OfType<Ensemble.Formulas.FormulaStorageUnavailableException>().FirstOrDefault() ?? ex.GetBaseException();
            Console.Error.WriteLine($"Ensemble.Agent: the node did not start: {reason.Message.TrimEnd('.')}.");
            return ExitStartFailed;
        }
        Console.WriteLine("Ensemble.Agent: stopped");
        return ExitOk;
    }

    private static IEnumerable<Exception> Chain(Exception? e)
    {
        for (; e is not null; e = e.InnerException) yield return e;
    }

    /// <summary>The node's options from flags and environment variables; an <see cref="ArgumentException"/> names what is wrong and the fix.</summary>
    private static NodeOptions Options(Func<string, string, string?> get)
    {
        var dataDirectory = get("data-dir", "ENSEMBLE_DATA_DIR")
            ?? throw new ArgumentException("no data directory given; pass --data-dir DIR or set ENSEMBLE_DATA_DIR.");
        var roles = (get("roles", "ENSEMBLE_ROLES") ?? "controller,agent")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        if (roles.Count == 0 || roles.Any(r => r is not (NodeOptions.ControllerRole or NodeOptions.AgentRole)))
            throw new ArgumentException($"roles must be 'controller', 'agent' or both, not '{string.Join(",", roles)}'.");
        var portText = get("port", "ENSEMBLE_PORT") ?? "0";
        if (!int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
            throw new ArgumentException($"port '{portText}' is not a port number; pass 0 for a free one.");
        var machine = get("machine", "ENSEMBLE_MACHINE") ?? MachineNames.Default;
        if (!MachineNames.IsValid(machine))
            throw new ArgumentException($"'{machine}' is not a machine name; use {MachineNames.Rule}.");

        var joinText = get("join", "ENSEMBLE_JOIN");
        var join = new List<string>();
        foreach (var contact in (joinText ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (LocalAddress.ParseHostAndPort(contact) is null)
                throw new ArgumentException($"--join takes ADDR:PORT[,ADDR:PORT...] of the controllers, not '{contact}'; use the line 'ensemble add-machine' printed.");
            join.Add(contact);
        }
        var token = get("token", "ENSEMBLE_TOKEN");
        if (join.Count == 0)
        {
            if (!roles.Contains(NodeOptions.ControllerRole))
                throw new ArgumentException("a node without the controller role joins an environment: pass --join ADDR:PORT and --token TOKEN, " +
                                            "as printed by 'ensemble add-machine' on the operator's machine.");
            if (token is not null)
                throw new ArgumentException("--token goes with --join (the controllers to join through); pass both, as 'ensemble add-machine' printed them.");
        }
        else if (roles.Contains(NodeOptions.ControllerRole))
        {
            if (get("zookeeper", "ENSEMBLE_ZOOKEEPER") is null)
                throw new ArgumentException("a controller joins other controllers through the ZooKeeper they share: pass --zookeeper as well (see 'ensemble enable-ha').");
            if (token is not null)
                throw new ArgumentException("a controller joins without a token (it proves itself through ZooKeeper and the journal); drop --token.");
        }

        var journal = get("journal", "ENSEMBLE_JOURNAL");
        if (journal is not null)
        {
            try { _ = new Npgsql.NpgsqlConnectionStringBuilder(journal); }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"--journal takes a Npgsql connection string like 'Host=ADDR;Port=5432;Database=ensemble;Username=USER', not what was given ({ex.Message.TrimEnd('.')}).");
            }
            if (!roles.Contains(NodeOptions.ControllerRole))
                throw new ArgumentException("--journal is the controller's journal; an agent node journals nothing: drop --journal, or pass --roles controller.");
        }

        var host = get("host", "ENSEMBLE_HOST");
        if (host is null && join.Count > 0)
        {
            var (joinHost, joinPort) = LocalAddress.ParseHostAndPort(join[0])!.Value;
            host = LocalAddress.Toward(joinHost, joinPort)
                   ?? throw new ArgumentException($"this host has no route to {join[0]}; pass --host with the address to bind, or check the network.");
        }
        host ??= "127.0.0.1";
        var publicHost = get("public-host", "ENSEMBLE_PUBLIC_HOST");
        if (publicHost is null && host is "0.0.0.0" or "::" or "[::]")
            throw new ArgumentException($"--host {host} binds every address, which no other node can be told; pass --public-host with the address they reach this host at.");

        return new NodeOptions(
            Path.GetFullPath(dataDirectory),
            get("environment", "ENSEMBLE_ENVIRONMENT") ?? "local",
            roles,
            machine,
            host,
            port,
            get("zookeeper", "ENSEMBLE_ZOOKEEPER"))
        {
            PublicHostname = publicHost,
            Join = join,
            Token = token,
            Journal = journal,
        };
    }

    /// <summary>ensemble.conf, then the journal's persistence file and the role files over it; files that are absent are skipped.</summary>
    public static Config LoadNodeConfig(string directory, IReadOnlySet<string> roles, bool postgresJournal = false)
    {
        var files = new List<string> { "ensemble.conf", postgresJournal ? "persistence-postgresql.conf" : "persistence-sqlite.conf" };
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
            ["controller"] = $"{node.Address.Host}:{node.Address.Port}",
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
            if (!Flags.Contains(name)) throw new ArgumentException($"unknown option '{arg}'");
            if (i + 1 >= args.Length) throw new ArgumentException($"option '{arg}' needs a value");
            flags[name] = args[++i];
        }
        return flags;
    }
}
