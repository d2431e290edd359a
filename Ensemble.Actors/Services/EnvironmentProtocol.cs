using Ensemble.Serialization;

namespace Ensemble.Services;

/// <summary>Requests about the environment as a whole, answered by the controller's service manager.</summary>
public static class EnvironmentProtocol
{
    /// <summary>Answered with <see cref="Pong"/>: the controller is up and reachable.</summary>
    public sealed record Ping : IWireMessage;

    public sealed record Pong(string Environment) : IWireMessage;

    public sealed record GetStatus : IWireMessage;

    /// <summary>The stable shape `ensemble status --format json` prints.</summary>
    public sealed record Status(IReadOnlyDictionary<string, ServiceStatus> Services) : IWireMessage;

    public sealed record ServiceStatus(string Formula, IReadOnlyDictionary<string, UnitStatus> Units, bool UpgradeRunning);

    public sealed record UnitStatus(string Formula, string State, bool Upgrading, string Machine, string? Error, string? Progress);
}
