using System.Diagnostics;
using System.Text;

namespace Ensemble.TestKit.MultiHost;

/// <summary>The system commands the fixture drives, found once, and a way to run them to completion.</summary>
internal static class Tools
{
    private static readonly Lazy<string?> Missing = new(() => MissingRequirement(Environment.IsPrivilegedProcess, path: null));

    private static readonly Lazy<string> IpPath = new(() => Find("ip") ?? "ip");
    private static readonly Lazy<string> ShPath = new(() => Find("sh") ?? "/bin/sh");

    public static string Ip => IpPath.Value;
    public static string Sh => ShPath.Value;

    /// <summary>The full path of a command the requirements check found.</summary>
    public static string Command(string tool) => Find(tool) ?? tool;

    /// <summary>Throws the one sentence naming what this machine lacks for simulated hosts, if anything.</summary>
    public static void Require()
    {
        if (Missing.Value is { } sentence) throw new InvalidOperationException(sentence);
    }

    /// <summary>The sentence naming what is missing (root, iproute2, util-linux, a shell), or null when nothing is.</summary>
    /// <param name="path">directories to look in, as PATH spells them; null: this process's PATH and the sbin directories.</param>
    internal static string? MissingRequirement(bool isRoot, string? path)
    {
        if (!isRoot)
            return "The multi-host fixture needs root to create network namespaces and mounts: run the tests as root.";
        if (Find("ip", path) is null)
            return "The multi-host fixture needs the 'ip' command of iproute2: install it with 'apt-get install -y iproute2'.";
        string[] utilLinux = ["mount", "unshare", "flock", "setsid", "hostname"];
        if (utilLinux.FirstOrDefault(tool => Find(tool, path) is null) is { } missing)
            return $"The multi-host fixture needs the '{missing}' command: install util-linux and hostname ('apt-get install -y util-linux hostname').";
        if (Find("sh", path) is null || Find("bash", path) is null)
            return "The multi-host fixture needs /bin/sh and bash: install bash.";
        return null;
    }

    private static string? Find(string tool, string? path = null)
    {
        // sbin is where iproute2 lives but is not on every PATH a test runner passes on.
        var dirs = path is not null
            ? path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return dirs.Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a command in the test's own namespaces and throws naming it when it fails.</summary>
    public static async Task<string> RunCheckedAsync(string fileName, params string[] arguments)
    {
        var result = await RunAsync(fileName, arguments, TimeSpan.FromSeconds(30));
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"'{Path.GetFileName(fileName)} {string.Join(' ', arguments)}' failed with exit code {result.ExitCode}: {result.Stderr.Trim()}");
        return result.Stdout;
    }

    public static Task<string> IpAsync(params string[] arguments) => RunCheckedAsync(Ip, arguments);

    /// <summary>Runs to completion; on the deadline kills the command and everything it started.</summary>
    /// <param name="display">how failure messages name the command; defaults to its command line.</param>
    public static async Task<HostCommandResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null, string? standardInput = null, string? display = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments) psi.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) psi.Environment.Remove(key);
            else psi.Environment[key] = value;
        display ??= $"'{Path.GetFileName(fileName)} {string.Join(' ', psi.ArgumentList)}'";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {display}.");
        var startTime = ProcessTree.StartTime(process.Id);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            if (standardInput is not null) await process.StandardInput.WriteAsync(standardInput);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command exited without reading its input; its exit code says what happened.
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(stdout, stderr).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            var exited = process.HasExited;
            ProcessTree.KillTree(process.Id, startTime);
            throw new TimeoutException(exited
                ? $"{display} exited, but something it started in the background still held its output open after {timeout}."
                : $"{display} did not finish within {timeout}; killed it and what it started.");
        }
        return new HostCommandResult(process.ExitCode, await stdout, await stderr);
    }
}
