using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ensemble.Cli;

/// <summary>
/// What the CLI remembers of one environment: where to reach it — Controllers, the ADDR:PORT of its controllers
/// (Contact: the first one's receptionist, as records of older versions have it only) — and, for one bootstrapped
/// on this machine, which process runs it, where its data and log are, and how it was started (ZooKeeper null: the
/// embedded store), so restart-environment starts it the same way. An environment connected to with
/// `ensemble connect` runs elsewhere (Pid 0, no data directory or log here): it is alive when it answers.
/// </summary>
public sealed record EnvironmentRecord(string Name, string Contact, int Pid, string? DataDirectory, string? Log, string? ZooKeeper = null,
    IReadOnlyList<string>? Controllers = null)
{
    /// <summary>Bootstrapped here: its node is a process of this machine.</summary>
    [JsonIgnore] public bool IsLocal => Pid > 0;

    /// <summary>ADDR:PORT of every controller the CLI may try.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> ContactPoints => Controllers is { Count: > 0 } controllers ? controllers
        : Akka.Actor.ActorPath.TryParse(Contact, out var path) && path.Address.Host is { } host ? [$"{host}:{path.Address.Port}"] : [];

    /// <summary>The receptionist a ClusterClient contacts at a controller's ADDR:PORT.</summary>
    public static string ReceptionistAt(string hostAndPort) => $"akka.tcp://{Ensemble.Hosting.EnsembleNode.SystemName}@{hostAndPort}/system/receptionist";
}

/// <summary>
/// ENSEMBLE_HOME (default ~/.ensemble): environments/&lt;name&gt;/ holds environment.json, the node's data
/// directory and its log; `current` names the environment commands use when none is given.
/// </summary>
public sealed class EnvironmentHome(string root)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static EnvironmentHome FromEnvironment() => new(
        System.Environment.GetEnvironmentVariable("ENSEMBLE_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".ensemble"));

    public string Root { get; } = Path.GetFullPath(root);

    public string EnvironmentDirectory(string name) => Path.Combine(Root, "environments", name);

    public string RecordPath(string name) => Path.Combine(EnvironmentDirectory(name), "environment.json");

    private string CurrentPath => Path.Combine(Root, "current");

    /// <summary>The environment a command means: the one given, else ENSEMBLE_ENVIRONMENT, else the current one.</summary>
    public string Resolve(string? given)
    {
        if (!string.IsNullOrEmpty(given)) return given;
        if (System.Environment.GetEnvironmentVariable("ENSEMBLE_ENVIRONMENT") is { Length: > 0 } fromVariable) return fromVariable;
        return File.Exists(CurrentPath) ? File.ReadAllText(CurrentPath).Trim() : "local";
    }

    public EnvironmentRecord? Find(string name)
    {
        var path = RecordPath(name);
        if (!File.Exists(path)) return null;
        try
        {
            var record = JsonSerializer.Deserialize<EnvironmentRecord>(File.ReadAllText(path), Json);
            if (record is { Name: not null, Contact: not null } && (!record.IsLocal || record is { DataDirectory: not null, Log: not null })) return record;
        }
        catch (JsonException) { }
        catch (IOException) { }
        throw new CliException(ExitCodes.Unavailable,
            $"the record of environment '{name}' ({path}) cannot be read; repair it (it names the node's pid and contact point), or delete {EnvironmentDirectory(name)} once no node of it runs.");
    }

    /// <summary>The environment, or a clear refusal when it was never bootstrapped or connected to.</summary>
    public EnvironmentRecord Require(string name) => Find(name)
        ?? throw new CliException(ExitCodes.Unavailable,
            $"environment '{name}' is not bootstrapped; run 'ensemble bootstrap --local --name {name}' first, or 'ensemble connect {name} FILE|ADDR:PORT' to use one that runs elsewhere.");

    public void Save(EnvironmentRecord record)
    {
        Directory.CreateDirectory(EnvironmentDirectory(record.Name));
        var temp = RecordPath(record.Name) + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(record, Json));
        File.Move(temp, RecordPath(record.Name), overwrite: true);
        File.WriteAllText(CurrentPath, record.Name);
    }

    /// <summary>
    /// Remembers the controllers an environment runs now (as its status listed them), so the next command can reach
    /// any of them when one is gone. Only for connected environments; the current environment stays as it is.
    /// </summary>
    public void RememberControllers(EnvironmentRecord record, IReadOnlyList<string> controllers)
    {
        if (record.IsLocal || controllers.Count == 0 || record.ContactPoints.ToHashSet().SetEquals(controllers)) return;
        var updated = record with { Controllers = controllers };
        var temp = RecordPath(record.Name) + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(updated, Json));
        File.Move(temp, RecordPath(record.Name), overwrite: true);
    }

    /// <summary>Deletes the environment's directory, data included: only destroy-environment calls this.</summary>
    public void Remove(string name)
    {
        if (Directory.Exists(EnvironmentDirectory(name))) Directory.Delete(EnvironmentDirectory(name), recursive: true);
        if (File.Exists(CurrentPath) && File.ReadAllText(CurrentPath).Trim() == name) File.Delete(CurrentPath);
    }

    public IEnumerable<string> Names() =>
        Directory.Exists(Path.Combine(Root, "environments"))
            ? Directory.GetDirectories(Path.Combine(Root, "environments")).Select(Path.GetFileName).OfType<string>().Order()
            : [];
}
