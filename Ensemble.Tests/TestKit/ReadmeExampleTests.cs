using Xunit;

namespace Ensemble.Tests.TestKit;

/// <summary>The test kit's README shows exactly RollingUpgradeExample.cs, which CI compiles and runs.</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void The_readme_example_is_the_test_that_runs()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "ActorEnsemble.sln")))
            root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("no ActorEnsemble.sln above the test binaries");
        var example = File.ReadAllText(Path.Combine(root, "Ensemble.Tests", "TestKit", "RollingUpgradeExample.cs"));
        var readme = File.ReadAllText(Path.Combine(root, "Ensemble.TestKit", "README.md"));
        Assert.Contains("```csharp\n" + example + "```", readme);
    }
}
