using Ensemble.Coordination;

namespace Ensemble.Tests.Coordination;

/// <summary>The contract against <see cref="EmbeddedCoordinationServer"/>, one server in its own temp directory per test.</summary>
public sealed class EmbeddedStoreContractTests : CoordinationStoreContract
{
    private readonly TempDirectory directory = new();
    private readonly EmbeddedCoordinationServer server;

    public EmbeddedStoreContractTests()
    {
        server = EmbeddedCoordinationServer.Open(directory.Path);
    }

    protected override Task<ICoordinationStore> OpenSessionAsync() => Task.FromResult(server.Connect());

    protected override Task DisposeBackendAsync()
    {
        server.Dispose();
        directory.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>A unique temporary directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ensemble-store-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        if (Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}
