using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Ensemble.TestKit.MultiHost;

/// <summary>
/// Machines on one LAN, simulated with Linux namespaces: a switch (a bridge in a namespace of its own) and one network
/// namespace per <see cref="SimulatedHost"/> cabled to it, in a private 10.x.y.0/24 with no route anywhere else.
/// Dispose kills every process on the hosts and removes the namespaces, their links and the network's directory;
/// a watchdog and a sweep at the next creation do the same when the test process dies first. Needs root and iproute2.
/// </summary>
public sealed partial class SimulatedNetwork : IAsyncDisposable
{
    private static readonly HashSet<string> IdsInUse = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<SimulatedHost> _hosts = [];
    private readonly ConcurrentQueue<HostProcess> _processes = new();
    private FileStream? _ownerLock;
    private Process? _watchdog;
    private int _disposed;

    private SimulatedNetwork(string id, int b, int c)
    {
        Id = id;
        Prefix = string.Create(CultureInfo.InvariantCulture, $"10.{b}.{c}");
        Directory = Leftovers.DirectoryOf(id);
        SwitchNamespace = id + ".switch";
    }

    /// <summary>Names this network's namespaces and directory: "emh.PID.START.B-C" (owner pid and start time, subnet).</summary>
    public string Id { get; }

    /// <summary>"10.B.C.0/24".</summary>
    public string Subnet => Prefix + ".0/24";

    private string Prefix { get; }

    /// <summary>The network's directory: its hosts' data roots (hosts/NAME) and the /etc/hosts every host sees.</summary>
    public string Directory { get; }

    /// <summary>The namespace of the switch (bridge br0, one port per host).</summary>
    public string SwitchNamespace { get; }

    public IReadOnlyList<SimulatedHost> Hosts
    {
        get { lock (_hosts) return [.. _hosts]; }
    }

    public SimulatedHost this[string name] => Hosts.FirstOrDefault(h => h.Name == name)
        ?? throw new KeyNotFoundException($"The simulated network has no host named '{name}'.");

    /// <summary>
    /// Sweeps what dead earlier runs left behind, then makes a switch in a free random subnet of 10.200-254.x.0/24.
    /// Throws one sentence naming what is missing when the machine cannot do it (root, iproute2).
    /// </summary>
    public static async Task<SimulatedNetwork> CreateAsync()
    {
        Tools.Require();
        await Leftovers.SweepDeadRunsAsync();
        for (var attempt = 0; ; attempt++)
        {
            var (b, c) = await PickSubnetAsync();
            var network = new SimulatedNetwork(Leftovers.NewId(b, c), b, c);
            lock (IdsInUse)
                if (!IdsInUse.Add(network.Id)) continue;
            try
            {
                await network.StartAsync();
            }
            catch
            {
                await network.DisposeAsync();
                throw;
            }
            // Another test process may have picked the same subnet at the same moment: the smaller id keeps it.
            if (attempt < 20 && Leftovers.ExistingIds().Any(other =>
                    other != network.Id && Leftovers.SubnetOf(other) == (b, c) && string.CompareOrdinal(other, network.Id) < 0))
            {
                await network.DisposeAsync();
                continue;
            }
            return network;
        }
    }

    /// <summary>Adds a host: a namespace cabled to the switch, the next address, an empty data root; known to every host by name.</summary>
    /// <param name="name">lower-case letters, digits and dashes, starting with a letter (it becomes the hostname).</param>
    public async Task<SimulatedHost> AddHostAsync(string name)
    {
        ThrowIfDisposed();
        if (!HostName().IsMatch(name) || name == "switch")
            throw new ArgumentException($"'{name}' cannot name a simulated host: use up to 32 lower-case letters, digits and dashes, starting with a letter (not 'switch').", nameof(name));
        await _gate.WaitAsync();
        try
        {
            if (Hosts.Any(h => h.Name == name)) throw new ArgumentException($"The simulated network already has a host named '{name}'.", nameof(name));
            var index = Hosts.Count + 1;
            if (index > 253) throw new InvalidOperationException("A simulated network holds at most 253 hosts.");
            var host = new SimulatedHost(this, name, index, string.Create(CultureInfo.InvariantCulture, $"{Prefix}.{index}"));
            lock (_hosts) _hosts.Add(host);
            await host.CreateAsync();
            // Appended in place: processes already running see it through their bind mount of this very file.
            await File.AppendAllTextAsync(HostsFile, $"{host.Address}\t{name}\n");
            return host;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Adds hosts in order (see <see cref="AddHostAsync"/>).</summary>
    public async Task<IReadOnlyList<SimulatedHost>> AddHostsAsync(params string[] names)
    {
        var hosts = new List<SimulatedHost>();
        foreach (var name in names) hosts.Add(await AddHostAsync(name));
        return hosts;
    }

    /// <summary>
    /// Kills every process on every host (whoever started it), deletes the namespaces and with them their links and
    /// mounts, and the network's directory. Idempotent. Throws when something could not be removed.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        var errors = new List<Exception>();
        try { await Leftovers.CleanUpAsync(Id); }
        catch (Exception ex) { errors.Add(ex); }
        foreach (var process in _processes)
        {
            try { await process.ReleaseAsync(TimeSpan.FromSeconds(30)); }
            catch (Exception ex) { errors.Add(new InvalidOperationException($"{process} did not end after SIGKILL.", ex)); }
        }
        await StopWatchdogAsync(errors);
        lock (IdsInUse) IdsInUse.Remove(Id);
        if (errors.Count > 0) throw new AggregateException($"Disposing simulated network {Id} left something behind.", errors);
    }

    /// <summary>Lets go of the network as a killed test process would: no cleanup, the owner's lock released.</summary>
    internal void AbandonAsIfKilled()
    {
        Interlocked.Exchange(ref _disposed, 1);
        _ownerLock?.Dispose();
        lock (IdsInUse) IdsInUse.Remove(Id);
    }

    internal int? WatchdogPid => _watchdog?.Id;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);

    internal HostProcess Track(HostProcess process)
    {
        _processes.Enqueue(process);
        return process;
    }

    private string HostsFile => Path.Combine(Directory, "etc", "hosts");

    private async Task StartAsync()
    {
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "hosts"));
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "etc"));
        await File.WriteAllTextAsync(HostsFile, "127.0.0.1\tlocalhost\n::1\tlocalhost\n");
        // FileShare.None takes an exclusive flock: held for the network's life, released by the kernel however this
        // process ends, which is what the watchdog waits for. It comes before any namespace exists.
        _ownerLock = new FileStream(Path.Combine(Directory, "owner.lock"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        _watchdog = Leftovers.StartWatchdog(Id, _ownerLock.Name);
        await Tools.IpAsync("netns", "add", SwitchNamespace);
        await Tools.IpAsync("-n", SwitchNamespace, "link", "add", "br0", "type", "bridge", "forward_delay", "0");
        // The switch's own address claims the subnet where other runs look for addresses in use.
        await Tools.IpAsync("-n", SwitchNamespace, "addr", "add", Prefix + ".254/24", "dev", "br0");
        await Tools.IpAsync("-n", SwitchNamespace, "link", "set", "br0", "up");
    }

    private async Task StopWatchdogAsync(List<Exception> errors)
    {
        _ownerLock?.Dispose();
        if (_watchdog is null) return;
        try
        {
            // Released, the lock lets it run: it finds nothing left and exits.
            await _watchdog.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException ex)
        {
            _watchdog.Kill();
            errors.Add(new InvalidOperationException($"The watchdog of {Id} (pid {_watchdog.Id}) did not exit.", ex));
        }
        _watchdog.Dispose();
    }

    /// <summary>A random 10.200-254.x /24 that no address or route on the machine or in any namespace uses yet.</summary>
    private static async Task<(int B, int C)> PickSubnetAsync()
    {
        var seen = string.Join('\n',
            (await Tools.RunAsync(Tools.Ip, ["-4", "-o", "addr", "show"], TimeSpan.FromSeconds(30))).Stdout,
            (await Tools.RunAsync(Tools.Ip, ["-4", "route", "show", "table", "all"], TimeSpan.FromSeconds(30))).Stdout,
            (await Tools.RunAsync(Tools.Ip, ["-all", "netns", "exec", Tools.Ip, "-4", "-o", "addr", "show"], TimeSpan.FromSeconds(30))).Stdout);
        var used = TenDotAddress().Matches(seen).Select(m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .Concat(Leftovers.ExistingIds().Select(Leftovers.SubnetOf).OfType<(int, int)>())
            .ToHashSet();
        for (var i = 0; i < 10_000; i++)
        {
            var candidate = (Random.Shared.Next(200, 255), Random.Shared.Next(0, 256));
            if (!used.Contains(candidate)) return candidate;
        }
        throw new InvalidOperationException("No free /24 is left in 10.200-254.x.0 for a simulated network.");
    }

    [GeneratedRegex(@"(?<![\d.])10\.(\d{1,3})\.(\d{1,3})\.\d{1,3}")]
    private static partial Regex TenDotAddress();

    [GeneratedRegex("^[a-z][a-z0-9-]{0,31}$")]
    private static partial Regex HostName();
}
