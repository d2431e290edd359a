using System.Diagnostics;
using System.Globalization;

namespace Ensemble.TestKit.MultiHost;

/// <summary>
/// One machine of a <see cref="SimulatedNetwork"/>: its own network namespace with one address on the network, its own
/// hostname, and a data root no other host can see.
/// </summary>
public sealed class SimulatedHost
{
    // Runs as the command's first step on its host, in the mount namespace `ip netns exec` made for it (so nothing
    // propagates back): the host's name, the network's /etc/hosts, then an empty tmpfs over every host's data root
    // with this host's own bound back in. The real directory is reached through the working directory, which the
    // tmpfs does not hide; `mount -c` keeps mount(8) from resolving "." to the path the tmpfs now covers.
    private const string Wrapper = """
        set -e
        dir=$1 self=$2 cwd=$3; shift 3
        hostname "$self"
        mount --bind "$dir/etc/hosts" /etc/hosts
        cd "$dir/hosts/$self"
        names=$(ls "$dir/hosts")
        mount -t tmpfs -o size=1m,mode=0755 emh-hidden "$dir/hosts"
        for h in $names; do mkdir "$dir/hosts/$h"; done
        mount --no-canonicalize --bind . "$dir/hosts/$self"
        cd "$cwd"
        exec "$@"
        """;

    private int _logs;

    internal SimulatedHost(SimulatedNetwork network, string name, int index, string address)
    {
        Network = network;
        Name = name;
        Index = index;
        Address = address;
        Namespace = network.Id + "." + name;
        DataRoot = Path.Combine(network.Directory, "hosts", name);
        LogDirectory = Path.Combine(DataRoot, "logs");
        TempDirectory = Path.Combine(DataRoot, "tmp");
    }

    public SimulatedNetwork Network { get; }

    /// <summary>Its name, also its hostname and the name other hosts resolve to <see cref="Address"/>.</summary>
    public string Name { get; }

    /// <summary>Its IPv4 address in <see cref="SimulatedNetwork.Subnet"/>.</summary>
    public string Address { get; }

    /// <summary>Its network namespace (for `ip netns exec`, `ip -n`).</summary>
    public string Namespace { get; }

    /// <summary>Its directory: seen with its contents by its own processes (and the test), empty by every other host's.</summary>
    public string DataRoot { get; }

    /// <summary>Where the output of <see cref="Start"/>ed processes goes, inside <see cref="DataRoot"/>.</summary>
    public string LogDirectory { get; }

    /// <summary>TMPDIR of its processes (unless a test sets another), inside <see cref="DataRoot"/>.</summary>
    public string TempDirectory { get; }

    /// <summary>True between <see cref="CutOffAsync"/> and <see cref="HealAsync"/>.</summary>
    public bool IsCutOff { get; private set; }

    internal int Index { get; }

    /// <summary>Its cable's end in the switch namespace.</summary>
    internal string SwitchPort => string.Create(CultureInfo.InvariantCulture, $"h{Index}");

    /// <summary>
    /// Starts a process on this host and returns at once. Its output goes to a log in <see cref="LogDirectory"/>; the
    /// test process's environment is passed on, with TMPDIR set to <see cref="TempDirectory"/> and then
    /// <paramref name="environment"/> applied (a null value removes the variable).
    /// </summary>
    /// <param name="workingDirectory">defaults to <see cref="DataRoot"/>; must be one this host sees.</param>
    /// <param name="name">names the log file; defaults to the file name of the program.</param>
    public HostProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null, string? name = null)
    {
        Network.ThrowIfDisposed();
        name ??= Path.GetFileName(fileName);
        var log = NextLogPath(name);
        var psi = new ProcessStartInfo(Tools.Sh) { UseShellExecute = false };
        // Every wrapper execs the next, so the pid the test holds is the program's own; the output goes to the log
        // from the first step on, so also the fixture's own errors are there.
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec >>\"$0\" 2>&1 </dev/null; exec \"$@\"");
        psi.ArgumentList.Add(log);
        foreach (var argument in HostCommand(fileName, arguments, workingDirectory)) psi.ArgumentList.Add(argument);
        foreach (var (key, value) in EnvironmentWith(environment))
            if (value is null) psi.Environment.Remove(key);
            else psi.Environment[key] = value;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {fileName} on {Name}.");
        return Network.Track(new HostProcess(this, name, process, log));
    }

    /// <summary>Runs a command on this host to completion (the CLI on an operator's machine, a probe) and returns what it printed.</summary>
    /// <param name="timeout">defaults to 60 s; at the deadline the command is killed and <see cref="TimeoutException"/> thrown.</param>
    public Task<HostCommandResult> RunAsync(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null, TimeSpan? timeout = null, string? standardInput = null)
    {
        Network.ThrowIfDisposed();
        var args = arguments.ToArray();
        var command = HostCommand(fileName, args, workingDirectory);
        return Tools.RunAsync(command[0], command[1..], timeout ?? TimeSpan.FromSeconds(60), EnvironmentWith(environment), standardInput,
            display: $"'{fileName} {string.Join(' ', args)}' on {Name}");
    }

    /// <summary>Whether a TCP connection from this host to <paramref name="address"/>:<paramref name="port"/> opens within <paramref name="connectTimeout"/> (2 s).</summary>
    public async Task<bool> CanConnectAsync(string address, int port, TimeSpan? connectTimeout = null)
    {
        var seconds = (connectTimeout ?? TimeSpan.FromSeconds(2)).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        var result = await RunAsync(Tools.Command("timeout"),
            [seconds, Tools.Command("bash"), "-c", "exec 3<>\"/dev/tcp/$0/$1\"", address, port.ToString(CultureInfo.InvariantCulture)]);
        return result.ExitCode == 0;
    }

    /// <summary>Waits until <see cref="CanConnectAsync"/> succeeds (a server is listening, the path is healed).</summary>
    public async Task WaitUntilReachableAsync(string address, int port, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await CanConnectAsync(address, port))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{address}:{port} did not accept a connection from {Name} within {timeout}.");
            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>Pulls its cable: its port on the switch goes down, so no packet reaches it or leaves it until <see cref="HealAsync"/>.</summary>
    public async Task CutOffAsync()
    {
        Network.ThrowIfDisposed();
        await Tools.IpAsync("-n", Network.SwitchNamespace, "link", "set", SwitchPort, "down");
        IsCutOff = true;
    }

    /// <summary>Plugs its cable back in.</summary>
    public async Task HealAsync()
    {
        Network.ThrowIfDisposed();
        await Tools.IpAsync("-n", Network.SwitchNamespace, "link", "set", SwitchPort, "up");
        IsCutOff = false;
    }

    /// <summary>
    /// Cuts only the path between this host and <paramref name="other"/> (a blackhole route to the other's address in
    /// each of the two namespaces); both keep reaching every other host. Undone by <see cref="ReconnectToAsync"/>.
    /// </summary>
    public async Task CutOffFromAsync(SimulatedHost other)
    {
        Network.ThrowIfDisposed();
        await Tools.IpAsync("-n", Namespace, "route", "add", "blackhole", other.Address + "/32");
        await Tools.IpAsync("-n", other.Namespace, "route", "add", "blackhole", Address + "/32");
    }

    /// <summary>Undoes <see cref="CutOffFromAsync"/>.</summary>
    public async Task ReconnectToAsync(SimulatedHost other)
    {
        Network.ThrowIfDisposed();
        await Tools.IpAsync("-n", Namespace, "route", "del", "blackhole", other.Address + "/32");
        await Tools.IpAsync("-n", other.Namespace, "route", "del", "blackhole", Address + "/32");
    }

    /// <summary>Starts a real ZooKeeper server on this host, serving on its address, and waits until it serves.</summary>
    /// <param name="port">its client port on this host's address.</param>
    /// <param name="tickTime">ms; session timeouts are clamped to [2, 20] ticks (the default allows sessions of 1 s).</param>
    public Task<HostedZooKeeper> StartZooKeeperAsync(int port = 2181, int tickTime = 500, TimeSpan? timeout = null) =>
        HostedZooKeeper.StartAsync(this, port, tickTime, timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>
    /// Starts a real PostgreSQL server on this host, serving on its address, with <paramref name="database"/> owned by
    /// the login <paramref name="user"/> (a random password, in <see cref="HostedPostgres.ConnectionString"/>), and waits until it serves.
    /// </summary>
    public Task<HostedPostgres> StartPostgresAsync(int port = 5432, string database = "ensemble", string user = "ensemble", TimeSpan? timeout = null) =>
        HostedPostgres.StartAsync(this, port, database, user, timeout ?? TimeSpan.FromSeconds(60));

    public override string ToString() => $"{Name} ({Address})";

    internal async Task CreateAsync()
    {
        Directory.CreateDirectory(LogDirectory);
        Directory.CreateDirectory(TempDirectory);
        var sw = Network.SwitchNamespace;
        await Tools.IpAsync("netns", "add", Namespace);
        // Both ends are made where they live: nothing of the network ever appears in the machine's own namespace.
        await Tools.IpAsync("-n", sw, "link", "add", SwitchPort, "type", "veth", "peer", "name", "eth0", "netns", Namespace);
        await Tools.IpAsync("-n", sw, "link", "set", SwitchPort, "master", "br0", "up");
        await Tools.IpAsync("-n", Namespace, "link", "set", "lo", "up");
        await Tools.IpAsync("-n", Namespace, "addr", "add", Address + "/24", "dev", "eth0");
        await Tools.IpAsync("-n", Namespace, "link", "set", "eth0", "up");
    }

    private string[] HostCommand(string fileName, IEnumerable<string> arguments, string? workingDirectory) =>
    [
        Tools.Ip, "netns", "exec", Namespace, Tools.Command("unshare"), "--uts", Tools.Sh, "-c", Wrapper, "sh",
        Network.Directory, Name, workingDirectory ?? DataRoot, fileName, .. arguments,
    ];

    private Dictionary<string, string?> EnvironmentWith(IReadOnlyDictionary<string, string?>? overrides)
    {
        var environment = new Dictionary<string, string?> { ["TMPDIR"] = TempDirectory };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) environment[key] = value;
        return environment;
    }

    private string NextLogPath(string name)
    {
        var n = Interlocked.Increment(ref _logs);
        return Path.Combine(LogDirectory, string.Create(CultureInfo.InvariantCulture, $"{n:D2}-{name}.log"));
    }
}
