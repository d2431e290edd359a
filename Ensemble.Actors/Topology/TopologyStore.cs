using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using Ensemble.Coordination;

namespace Ensemble.Topology;

/// <summary>
/// The shared topology (services, units, upgrade flags, formulas, agent presence, machines) laid out in the
/// coordination store under one root. The layout is documented in docs/architecture.md.
/// </summary>
public sealed class TopologyStore(ICoordinationStore store, string root = TopologyStore.DefaultRoot)
{
    public const string DefaultRoot = "/ensemble";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public ICoordinationStore Store => store;
    public string Root => root;

    public string ServicesPath => $"{root}/services";
    public string AgentsPath => $"{root}/agents";
    public string FormulasPath => $"{root}/formulas";
    public string MachinesPath => $"{root}/machines";
    public string RelationsPath => $"{root}/relations";
    public string ServicePath(string service) => $"{ServicesPath}/{service}";
    public string UnitsPath(string service) => $"{ServicePath(service)}/units";
    public string UnitPath(string unit) => $"{UnitsPath(UnitNames.ServiceOf(unit))}/{UnitNames.NumberOf(unit)}";
    public string ConfigPath(string service) => $"{ServicePath(service)}/config";
    public string UpgradeFlagPath(string unit) => $"{UnitPath(unit)}/upgrade";
    public string FormulaPath(string formulaId) => $"{FormulasPath}/{formulaId.Replace(':', '_')}";
    public string AgentPath(string machine) => $"{AgentsPath}/{machine}";
    public string MachinePath(string machine) => $"{MachinesPath}/{machine}";

    /// <summary>Creates the root and its fixed children; safe to call from every node at start.</summary>
    public async Task EnsureLayoutAsync()
    {
        var path = "";
        foreach (var segment in root.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path += "/" + segment;
            await CreateIfMissingAsync(path);
        }
        await CreateIfMissingAsync(ServicesPath);
        await CreateIfMissingAsync(AgentsPath);
        await CreateIfMissingAsync(FormulasPath);
        await CreateIfMissingAsync(MachinesPath);
        await CreateIfMissingAsync(RelationsPath);
    }

    // ---- services ----

    public async Task<ServiceRecord?> GetServiceAsync(string service) =>
        await ReadAsync<ServiceRecord>(ServicePath(service));

    public async Task<IReadOnlyList<string>> ListServicesAsync() =>
        (await store.GetChildrenAsync(ServicesPath)).Children;

    /// <summary>Creates the service with its units container and its configuration (empty unless given) in one transaction.</summary>
    public Task CreateServiceAsync(ServiceRecord service, Configuration.ServiceConfig? config = null) => store.MultiAsync(
    [
        new StoreOp.Create(ServicePath(service.Name), Encode(service)),
        new StoreOp.Create(UnitsPath(service.Name), []),
        new StoreOp.Create(ConfigPath(service.Name), Encode(config ?? Configuration.ServiceConfig.Empty)),
    ]);

    public Task PutServiceAsync(ServiceRecord service) => store.SetDataAsync(ServicePath(service.Name), Encode(service));

    /// <summary>Deletes the service, its units and their flags in one transaction.</summary>
    public async Task DeleteServiceAsync(string service)
    {
        var ops = new List<StoreOp>();
        foreach (var unit in await ListUnitsAsync(service))
        {
            if (await store.ExistsAsync(UpgradeFlagPath(unit.Name)) is not null)
                ops.Add(new StoreOp.Delete(UpgradeFlagPath(unit.Name)));
            ops.Add(new StoreOp.Delete(UnitPath(unit.Name)));
        }
        ops.Add(new StoreOp.Delete(UnitsPath(service)));
        if (await store.ExistsAsync(ConfigPath(service)) is not null) ops.Add(new StoreOp.Delete(ConfigPath(service)));
        ops.Add(new StoreOp.Delete(ServicePath(service)));
        await store.MultiAsync(ops);
    }

    // ---- configuration ----

    /// <summary>
    /// The service's configuration; a service created before configuration existed has no node, which reads as
    /// empty (version 0). A <paramref name="watcher"/> is armed either way: on the node's data, or on its creation.
    /// </summary>
    public async Task<Configuration.ServiceConfig> GetConfigAsync(string service, Action<WatchEvent>? watcher = null)
    {
        var path = ConfigPath(service);
        byte[] data;
        try
        {
            data = (await store.GetDataAsync(path, watcher)).Data;
        }
        catch (NoNodeException)
        {
            // Arms the watch on the node's creation; if it was created meanwhile, read it after all.
            if (await store.ExistsAsync(path, watcher) is null) return Configuration.ServiceConfig.Empty;
            return await GetConfigAsync(service);
        }
        return Decode<Configuration.ServiceConfig>(path, data) ?? Configuration.ServiceConfig.Empty;
    }

    /// <summary>Writes the service's configuration (creating the node for a service deployed before configuration existed).</summary>
    public async Task PutConfigAsync(string service, Configuration.ServiceConfig config)
    {
        try { await store.SetDataAsync(ConfigPath(service), Encode(config)); }
        catch (NoNodeException) { await store.CreateAsync(ConfigPath(service), Encode(config)); }
    }

    /// <summary>
    /// The effective configuration of the service's units (<see cref="Configuration.ConfigValues.Effective"/>): every
    /// option of its current formula, set or default, typed string, long, double or bool; null when neither.
    /// Empty when the service is not deployed or its formula record names no options.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, object?>> EffectiveConfigAsync(string service)
    {
        if (await GetServiceAsync(service) is not { } record) return new Dictionary<string, object?>();
        var options = (await GetFormulaAsync(record.Formula))?.Options ?? [];
        return Configuration.ConfigValues.Effective(options, (await GetConfigAsync(service)).Typed());
    }

    // ---- units ----

    /// <summary>
    /// The service's units, by number. Children that are not unit records (another client's nodes, damaged
    /// data) are skipped, and reported to <paramref name="unreadable"/> when given, so one bad node never
    /// hides the others.
    /// </summary>
    public async Task<IReadOnlyList<UnitRecord>> ListUnitsAsync(string service, ICollection<UnreadableRecord>? unreadable = null)
    {
        IReadOnlyList<string> children;
        try
        {
            children = (await store.GetChildrenAsync(UnitsPath(service))).Children;
        }
        catch (NoNodeException)
        {
            unreadable?.Add(new UnreadableRecord(UnitsPath(service), "missing: every service has a units node"));
            return [];
        }
        var numbered = new List<(int Number, string Child)>(children.Count);
        foreach (var child in children)
        {
            if (int.TryParse(child, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number))
                numbered.Add((number, child));
            else
                unreadable?.Add(new UnreadableRecord($"{UnitsPath(service)}/{child}", "not a unit: unit nodes are named by their number"));
        }
        var units = new List<UnitRecord>(numbered.Count);
        foreach (var (number, child) in numbered.OrderBy(c => c.Number))
        {
            var path = $"{UnitsPath(service)}/{child}";
            try
            {
                if (await ReadAsync<UnitRecord>(path) is not { } unit) continue;
                if (unit.Name != UnitNames.Of(service, number))
                    unreadable?.Add(new UnreadableRecord(path, $"names unit '{unit.Name}', not {UnitNames.Of(service, number)}"));
                else
                    units.Add(unit);
            }
            catch (UnreadableRecordException ex)
            {
                unreadable?.Add(ex.Record);
            }
        }
        return units;
    }

    public Task<UnitRecord?> GetUnitAsync(string unit) => ReadAsync<UnitRecord>(UnitPath(unit));

    public Task AddUnitAsync(UnitRecord unit) => store.CreateAsync(UnitPath(unit.Name), Encode(unit));

    /// <summary>Creates many units in few transactions: a large deploy costs a handful of store round trips, not one per unit.</summary>
    public async Task AddUnitsAsync(IReadOnlyList<UnitRecord> units)
    {
        foreach (var batch in units.Chunk(UnitsPerTransaction))
            await store.MultiAsync(batch.Select(u => (StoreOp)new StoreOp.Create(UnitPath(u.Name), Encode(u))).ToList());
    }

    // Well under ZooKeeper's 1 MB request limit (jute.maxbuffer) with records of a few hundred bytes.
    private const int UnitsPerTransaction = 200;

    public Task PutUnitAsync(UnitRecord unit) => store.SetDataAsync(UnitPath(unit.Name), Encode(unit));

    public async Task RemoveUnitAsync(string unit)
    {
        var ops = new List<StoreOp>();
        if (await store.ExistsAsync(UpgradeFlagPath(unit)) is not null) ops.Add(new StoreOp.Delete(UpgradeFlagPath(unit)));
        ops.Add(new StoreOp.Delete(UnitPath(unit)));
        await store.MultiAsync(ops);
    }

    /// <summary>Marks a unit to be removed by its machine's agent when it is back (see <see cref="UnitRecord.Dying"/>).</summary>
    public async Task MarkUnitDyingAsync(string unit)
    {
        var record = await GetUnitAsync(unit) ?? throw new NoNodeException(UnitPath(unit));
        if (record.Dying) return;
        var ops = new List<StoreOp> { new StoreOp.SetData(UnitPath(unit), Encode(record with { Dying = true })) };
        // A unit that is going away is upgraded no more.
        if (await store.ExistsAsync(UpgradeFlagPath(unit)) is not null) ops.Add(new StoreOp.Delete(UpgradeFlagPath(unit)));
        await store.MultiAsync(ops);
    }

    /// <summary>Marks a destroyed service whose dying units still wait for their machines.</summary>
    public async Task MarkServiceDyingAsync(string service)
    {
        var record = await GetServiceAsync(service) ?? throw new NoNodeException(ServicePath(service));
        if (!record.Dying) await PutServiceAsync(record with { Dying = true });
    }

    /// <summary>
    /// A dying unit was removed by its machine's agent: its record goes, and with the last one a dying service's.
    /// </summary>
    public async Task FinishRemovalAsync(string unit)
    {
        try { await RemoveUnitAsync(unit); }
        catch (NoNodeException) { }
        var service = UnitNames.ServiceOf(unit);
        if (await GetServiceAsync(service) is not { Dying: true }) return;
        if ((await store.GetChildrenAsync(UnitsPath(service))).Children.Count > 0) return;
        var ops = new List<StoreOp> { new StoreOp.Delete(UnitsPath(service)) };
        if (await store.ExistsAsync(ConfigPath(service)) is not null) ops.Add(new StoreOp.Delete(ConfigPath(service)));
        ops.Add(new StoreOp.Delete(ServicePath(service)));
        try { await store.MultiAsync(ops); }
        catch (NoNodeException) { }
    }

    /// <summary>Sets the unit's state and error cause, keeping everything else.</summary>
    public async Task SetUnitStateAsync(string unit, Units.UnitPhase state, string? error)
    {
        var current = await GetUnitAsync(unit) ?? throw new NoNodeException(UnitPath(unit));
        if (current.State == state && current.Error == error) return;
        await PutUnitAsync(current with { State = state, Error = error });
    }

    // ---- upgrade flags ----

    /// <summary>Flags the unit for an upgrade to the given formula; one write, idempotent.</summary>
    public async Task FlagUpgradeAsync(string unit, UpgradeFlag flag)
    {
        try
        {
            await store.CreateAsync(UpgradeFlagPath(unit), Encode(flag));
        }
        catch (NodeExistsException)
        {
            await store.SetDataAsync(UpgradeFlagPath(unit), Encode(flag));
        }
    }

    public Task<UpgradeFlag?> GetUpgradeFlagAsync(string unit) => ReadAsync<UpgradeFlag>(UpgradeFlagPath(unit));

    /// <summary>
    /// Records that the unit now runs <paramref name="formula"/> and clears its upgrade flag, in one
    /// atomic write, so no reader ever sees the flag cleared without the new formula or the reverse.
    /// </summary>
    public async Task CompleteUpgradeAsync(string unit, string formula, string? sha256 = null)
    {
        var current = await GetUnitAsync(unit) ?? throw new NoNodeException(UnitPath(unit));
        var updated = Encode(current with { Formula = formula, State = Units.UnitPhase.Running, Error = null, Sha256 = sha256 ?? current.Sha256 });
        var flagged = await store.ExistsAsync(UpgradeFlagPath(unit)) is not null;
        if (!flagged)
        {
            if (current.Formula != formula || current.State != Units.UnitPhase.Running || current.Error is not null
                || (sha256 is not null && current.Sha256 != sha256))
                await store.SetDataAsync(UnitPath(unit), updated);
            return;
        }
        await store.MultiAsync([new StoreOp.Delete(UpgradeFlagPath(unit)), new StoreOp.SetData(UnitPath(unit), updated)]);
    }

    /// <summary>Clears the flag without changing the unit's formula: the upgrade was abandoned.</summary>
    public async Task ClearUpgradeFlagAsync(string unit)
    {
        try { await store.DeleteAsync(UpgradeFlagPath(unit)); }
        catch (NoNodeException) { }
    }

    // ---- formulas ----

    public async Task PutFormulaAsync(FormulaRecord formula)
    {
        try { await store.CreateAsync(FormulaPath(formula.Id), Encode(formula)); }
        catch (NodeExistsException) { await store.SetDataAsync(FormulaPath(formula.Id), Encode(formula)); }
    }

    public Task<FormulaRecord?> GetFormulaAsync(string formulaId) => ReadAsync<FormulaRecord>(FormulaPath(formulaId));

    // ---- agents ----

    /// <summary>Announces a live agent; the node is ephemeral and vanishes with the agent's session.</summary>
    public async Task RegisterAgentAsync(AgentPresence agent)
    {
        try { await store.CreateAsync(AgentPath(agent.Machine), Encode(agent), CreateMode.Ephemeral); }
        catch (NodeExistsException)
        {
            var existing = await store.ExistsAsync(AgentPath(agent.Machine));
            if (existing?.EphemeralOwner == store.SessionId)
            {
                // Our own session, resumed after a restart: the node never went away; just say where we are now.
                await store.SetDataAsync(AgentPath(agent.Machine), Encode(agent));
                return;
            }
            // A previous incarnation's session that has not expired yet: take the machine over.
            try { await store.DeleteAsync(AgentPath(agent.Machine)); }
            catch (NoNodeException) { }
            await store.CreateAsync(AgentPath(agent.Machine), Encode(agent), CreateMode.Ephemeral);
        }
    }

    public async Task UnregisterAgentAsync(string machine)
    {
        try { await store.DeleteAsync(AgentPath(machine)); }
        catch (NoNodeException) { }
    }

    public async Task<IReadOnlyList<AgentPresence>> ListAgentsAsync()
    {
        var agents = new List<AgentPresence>();
        foreach (var machine in (await store.GetChildrenAsync(AgentsPath)).Children)
        {
            // A node another client put there is not an agent to place units on.
            try { if (await ReadAsync<AgentPresence>(AgentPath(machine)) is { } agent) agents.Add(agent); }
            catch (UnreadableRecordException) { }
        }
        return agents;
    }

    public Task<AgentPresence?> GetAgentAsync(string machine) => ReadAsync<AgentPresence>(AgentPath(machine));

    /// <summary>The machines whose agent has a presence node: one read, whatever the number of machines.</summary>
    public async Task<IReadOnlySet<string>> ListPresentMachinesAsync() =>
        (await store.GetChildrenAsync(AgentsPath)).Children.ToHashSet(StringComparer.Ordinal);

    // ---- machines ----

    public Task<MachineRecord?> GetMachineAsync(string machine) => ReadAsync<MachineRecord>(MachinePath(machine));

    /// <summary>Every machine record, by name; nodes that are not machine records are skipped and reported to <paramref name="unreadable"/>.</summary>
    public async Task<IReadOnlyList<MachineRecord>> ListMachinesAsync(ICollection<UnreadableRecord>? unreadable = null)
    {
        IReadOnlyList<string> children;
        try { children = (await store.GetChildrenAsync(MachinesPath)).Children; }
        catch (NoNodeException) { return []; }
        var machines = new List<MachineRecord>(children.Count);
        foreach (var child in children.Order(StringComparer.Ordinal))
        {
            try
            {
                if (await ReadAsync<MachineRecord>(MachinePath(child)) is not { } machine) continue;
                if (machine.Name != child) unreadable?.Add(new UnreadableRecord(MachinePath(child), $"names machine '{machine.Name}', not {child}"));
                else machines.Add(machine);
            }
            catch (UnreadableRecordException ex)
            {
                unreadable?.Add(ex.Record);
            }
        }
        return machines;
    }

    /// <summary>Adds a machine; a <see cref="NodeExistsException"/> when one of that name exists.</summary>
    public Task CreateMachineAsync(MachineRecord machine) => store.CreateAsync(MachinePath(machine.Name), Encode(machine));

    public async Task PutMachineAsync(MachineRecord machine)
    {
        try { await store.SetDataAsync(MachinePath(machine.Name), Encode(machine)); }
        catch (NoNodeException) { await store.CreateAsync(MachinePath(machine.Name), Encode(machine)); }
    }

    public async Task DeleteMachineAsync(string machine)
    {
        try { await store.DeleteAsync(MachinePath(machine)); }
        catch (NoNodeException) { }
    }

    // ---- plumbing ----

    private async Task CreateIfMissingAsync(string path)
    {
        if (await store.ExistsAsync(path) is not null) return;
        try { await store.CreateAsync(path, []); }
        catch (NodeExistsException) { }
    }

    /// <summary>
    /// The record at <paramref name="path"/>, null if the node is missing or empty. Data that is not that
    /// record (not JSON, or JSON without a field every record has) is an <see cref="UnreadableRecordException"/>
    /// naming the path, never a bare JsonException, so readers can skip it and say what they skipped.
    /// </summary>
    private async Task<T?> ReadAsync<T>(string path) where T : class
    {
        byte[] data;
        try
        {
            data = (await store.GetDataAsync(path)).Data;
        }
        catch (NoNodeException)
        {
            return null;
        }
        return Decode<T>(path, data);
    }

    /// <summary>The record in a node's data (see <see cref="ReadAsync{T}"/>); null when the data is empty.</summary>
    private static T? Decode<T>(string path, byte[] data) where T : class
    {
        if (data.Length == 0) return null;
        T? record;
        try
        {
            record = JsonSerializer.Deserialize<T>(data, Json);
        }
        catch (JsonException ex)
        {
            throw new UnreadableRecordException(path, $"not {RecordName<T>()}: {ex.Message.Split(" Path:")[0].TrimEnd('.')}");
        }
        if (record is null) throw new UnreadableRecordException(path, $"not {RecordName<T>()}: null");
        foreach (var field in RequiredFields.GetOrAdd(typeof(T), FieldsNeverNull))
            if (field.GetValue(record) is null)
                throw new UnreadableRecordException(path, $"not {RecordName<T>()}: it has no '{JsonNamingPolicy.CamelCase.ConvertName(field.Name)}'");
        return record;
    }

    /// <summary>"a service record", "an agent presence": the record type as a reader would say it.</summary>
    private static string RecordName<T>()
    {
        var words = System.Text.RegularExpressions.Regex.Replace(typeof(T).Name, "(?<=[a-z])(?=[A-Z])", " ").ToLowerInvariant();
        return ("aeio".Contains(words[0]) ? "an " : "a ") + words;
    }

    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> RequiredFields = new();

    /// <summary>The record's properties declared non-nullable: JSON that lacks one would otherwise deserialize to null.</summary>
    private static PropertyInfo[] FieldsNeverNull(Type type)
    {
        var nullability = new NullabilityInfoContext();
        return type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && !p.PropertyType.IsValueType && nullability.Create(p).ReadState == NullabilityState.NotNull)
            .ToArray();
    }

    internal static byte[] Encode<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Json);
}
