// Measures Ensemble.ZooKeeper throughput against a real server: getData and setData with 1 and with
// 64 requests in flight on one client (one pipelined connection).
// Usage: dotnet run -c Release --project bench/ZooKeeperBench [-- --seconds 3] [--server host:port]
// Without --server it starts a local standalone server (Debian zookeeper package + Java) and stops it at the end.
using System.Diagnostics;
using System.Globalization;
using Ensemble.ZooKeeper;
using Ensemble.TestKit.ZooKeeper;

var seconds = 3.0;
string? connectionString = null;
var maxOps = 2_000_000;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--server": connectionString = args[++i]; break;
        case "--max-ops": maxOps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: ZooKeeperBench [--seconds S] [--server host:port] [--max-ops N]");
            return 2;
    }
}

LocalZooKeeperServer? server = null;
try
{
    if (connectionString is null)
    {
        Console.WriteLine("Starting a local ZooKeeper server...");
        server = new LocalZooKeeperServer(tickTime: 2000, jvmOptions: ZooKeeperJava.ThroughputJvmOptions);
        connectionString = server.ConnectionString;
    }
    await using var zk = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions(connectionString, TimeSpan.FromSeconds(30)));
    var path = "/bench-" + Guid.NewGuid().ToString("N")[..8];
    var payload = new byte[100];
    Random.Shared.NextBytes(payload);
    await zk.CreateAsync(path, payload, Acl.OpenUnsafe, CreateMode.Ephemeral);

    Func<Task> get = () => zk.GetDataAsync(path);
    Func<Task> set = () => zk.SetDataAsync(path, payload);

    Console.WriteLine($"Server {connectionString}, {seconds:0.#} s per run, 100-byte node; warming up...");
    await RunAsync(get, 64, 1.0, maxOps);
    await RunAsync(set, 8, 0.5, maxOps);

    var rows = new List<(string Op, int InFlight, long Ops, double Seconds)>();
    foreach (var (name, op) in new[] { ("getData", get), ("setData", set) })
    {
        foreach (var inFlight in new[] { 1, 64 })
        {
            var (ops, elapsed) = await RunAsync(op, inFlight, seconds, maxOps);
            rows.Add((name, inFlight, ops, elapsed));
        }
    }

    Console.WriteLine();
    Console.WriteLine($"{"op",-8} {"in flight",9} {"ops",10} {"seconds",8} {"ops/s",12} {"vs 1",7}");
    var ok = true;
    foreach (var row in rows)
    {
        var rate = row.Ops / row.Seconds;
        var single = rows.First(r => r.Op == row.Op && r.InFlight == 1);
        var ratio = rate / (single.Ops / single.Seconds);
        if (row.InFlight == 64 && ratio < 5) ok = false;
        Console.WriteLine($"{row.Op,-8} {row.InFlight,9} {row.Ops,10} {row.Seconds,8:0.00} {rate,12:N0} {ratio,6:0.0}x");
    }
    Console.WriteLine();
    Console.WriteLine(ok ? "OK: 64 in flight is at least 5x 1 in flight for every operation."
                         : "WARNING: 64 in flight is less than 5x 1 in flight for some operation.");
    await zk.CloseAsync();
    return ok ? 0 : 1;
}
finally
{
    server?.Dispose();
}

static async Task<(long Ops, double Seconds)> RunAsync(Func<Task> op, int inFlight, double seconds, int maxOps)
{
    long done = 0;
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var stopwatch = Stopwatch.StartNew();
    var limit = TimeSpan.FromSeconds(seconds);
    async Task Worker()
    {
        while (stopwatch.Elapsed < limit && Interlocked.Read(ref done) < maxOps)
        {
            await op().ConfigureAwait(false);
            Interlocked.Increment(ref done);
        }
    }
    await Task.WhenAll(Enumerable.Range(0, inFlight).Select(_ => Task.Run(Worker)));
    if (Environment.GetEnvironmentVariable("ZK_BENCH_CPU") is not null)
        Console.WriteLine($"  [{inFlight} in flight: client CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / stopwatch.Elapsed.TotalSeconds:0.00} cores]");
    return (done, stopwatch.Elapsed.TotalSeconds);
}
