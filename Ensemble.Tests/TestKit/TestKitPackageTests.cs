using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using Xunit;

namespace Ensemble.Tests.TestKit;

/// <summary>The test kit is a package others can take: `dotnet pack` makes it, with its README and its dependencies.</summary>
public sealed class TestKitPackageTests : IDisposable
{
    private readonly string _feed = Directory.CreateTempSubdirectory("ensemble-testkit-pack-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_feed, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void The_test_kit_packs_with_its_readme_its_library_and_the_product_as_a_dependency()
    {
        // Tests run from <repo>/Ensemble.Tests/bin/<Configuration>/net10.0/.
        var binary = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = binary.Parent!.Name;
        var repository = binary.Parent.Parent!.Parent!.Parent!.FullName;
        foreach (var project in new[] { "Ensemble.ZooKeeper", "Ensemble.Actors", "Ensemble.TestKit" })
            Pack(Path.Combine(repository, project, project + ".csproj"), configuration);

        var package = Assert.Single(Directory.GetFiles(_feed, "Ensemble.TestKit.*.nupkg"));
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("lib/net10.0/Ensemble.TestKit.dll", entries);
        Assert.Contains("README.md", entries);
        using var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var dependencies = XDocument.Load(nuspec).Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => (string)e.Attribute("id")!).ToList();
        Assert.Contains("Ensemble.Actors", dependencies);
        Assert.Contains("Akka.TestKit.Xunit2", dependencies);
        // What it depends on is packed too, so the kit can be installed from the same feed.
        Assert.Single(Directory.GetFiles(_feed, "Ensemble.Actors.*.nupkg"));
        Assert.Single(Directory.GetFiles(_feed, "Ensemble.ZooKeeper.*.nupkg"));
    }

    private void Pack(string project, string configuration)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "pack", project, "--no-build", "-c", configuration, "-o", _feed, "-nologo", "-nodeReuse:false" }) start.ArgumentList.Add(arg);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), $"dotnet pack {project} did not finish within 3 minutes");
        Assert.True(process.ExitCode == 0, $"dotnet pack {project} failed:\n{stdout.Result}\n{stderr.Result}");
    }
}
