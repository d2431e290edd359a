using System.Diagnostics;

namespace Ensemble.Tests.EndToEnd;

/// <summary>
/// The ensemble command as a user gets it: this checkout's Ensemble.Cli packed as a .NET tool (`dotnet pack`,
/// from the build the tests were built with) and installed with `dotnet tool install` into a private tool path,
/// once per test run. The package gets a version of its own, so no stale copy from a NuGet cache can stand in
/// for it. Any failure here fails the tests that need the tool, loudly.
/// </summary>
public static class InstalledTool
{
    public const string PackageId = "ActorEnsemble.Cli";

    private static readonly Lazy<string> Installed = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The installed `ensemble` launcher.</summary>
    public static string Command => Installed.Value;

    /// <summary>The directory the tool was installed into (what a user would put on PATH).</summary>
    public static string ToolPath => Path.GetDirectoryName(Command)!;

    /// <summary>The checkout the tests were built from (they run from &lt;repo&gt;/Ensemble.Tests/bin/&lt;Configuration&gt;/net10.0/).</summary>
    public static string RepositoryRoot =>
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Parent!.Parent!.Parent!.FullName;

    private const string Prefix = "ensemble-tool-";

    private static string Install()
    {
        RemoveLeftovers();
        var work = Directory.CreateTempSubdirectory(Prefix).FullName;
        File.WriteAllText(Path.Combine(work, "owner"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // The owner file goes last: an exit cut short leaves it, and the next run knows the rest is garbage.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            Delete(Path.Combine(work, "tools"));
            Delete(work);
        };
        // Tests run from <repo>/Ensemble.Tests/bin/<Configuration>/net10.0/.
        var binary = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = binary.Parent!.Name;
        var repository = binary.Parent.Parent!.Parent!.Parent!.FullName;
        var project = Path.Combine(repository, "Ensemble.Cli", "Ensemble.Cli.csproj");
        if (!File.Exists(project)) throw new InvalidOperationException($"Ensemble.Cli.csproj not found at {project}: the tests must run from the repository's build output.");

        var version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        var feed = Path.Combine(work, "feed");
        Run("dotnet", "pack", project, "--no-build", "-c", configuration, "-o", feed, $"-p:PackageVersion={version}", "-nologo", "-nodeReuse:false");
        var config = Path.Combine(work, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="ensemble" value="{feed}" /></packageSources></configuration>
            """);
        var tools = Path.Combine(work, "tools");
        Run("dotnet", "tool", "install", PackageId, "--version", version, "--tool-path", tools, "--configfile", config);
        var command = Path.Combine(tools, "ensemble");
        if (!File.Exists(command)) throw new InvalidOperationException($"dotnet tool install left no {command}.");
        // Only the installed tool is needed from here on.
        Delete(feed);
        Delete(Path.Combine(work, "packages"));
        return command;

        void Run(string file, params string[] args)
        {
            var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args) start.ArgumentList.Add(arg);
            start.Environment["NUGET_PACKAGES"] = Path.Combine(work, "packages");
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            start.Environment["DOTNET_NOLOGO"] = "1";
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{file} {string.Join(' ', args)}' did not finish within 5 minutes");
            }
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"'{file} {string.Join(' ', args)}' failed with exit {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
        }
    }

    /// <summary>
    /// A test host may be ended before its exit handler has deleted its tool: whatever an earlier run whose
    /// process is gone left behind is removed here.
    /// </summary>
    private static void RemoveLeftovers()
    {
        foreach (var directory in Directory.GetDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            var owner = Path.Combine(directory, "owner");
            if (File.Exists(owner) && int.TryParse(File.ReadAllText(owner), out var pid) && File.Exists($"/proc/{pid}/stat")) continue;
            // No owner: half deleted by an exit cut short, unless it was made a moment ago.
            if (!File.Exists(owner) && Directory.GetCreationTimeUtc(directory) > DateTime.UtcNow.AddMinutes(-1)) continue;
            Delete(directory);
        }
    }

    private static void Delete(string directory)
    {
        try { Directory.Delete(directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
