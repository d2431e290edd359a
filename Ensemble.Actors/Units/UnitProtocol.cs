using Ensemble.Formulas;
using Ensemble.Serialization;

namespace Ensemble.Units;

/// <summary>Messages to and from unit agents. Commands are routed by unit name through the machine agent.</summary>
public static class UnitProtocol
{
    /// <summary>A message addressed to one unit.</summary>
    public interface IUnitMessage : IWireMessage
    {
        string Unit { get; }
    }

    public sealed record DeployUnit(string Unit, FormulaRef Formula) : IUnitMessage;

    /// <summary>Idempotent: sending it again while the upgrade runs only re-subscribes the sender to its outcome.</summary>
    public sealed record UpgradeUnit(string Unit, FormulaRef Formula) : IUnitMessage;

    public sealed record ResolveUnit(string Unit, bool Retry) : IUnitMessage;

    public sealed record RemoveUnit(string Unit) : IUnitMessage;

    public sealed record GetUnitStatus(string Unit) : IUnitMessage;

    public sealed record UnitStatus(string Unit, string State, FormulaRef? Formula, FormulaRef? Target, string? Error) : IUnitMessage;

    public sealed record UnitUpgraded(string Unit, FormulaRef Formula) : IUnitMessage;

    public sealed record UnitUpgradeFailed(string Unit, string State, string Cause) : IUnitMessage;

    /// <summary>Sent to those waiting on an upgrade at each step it takes.</summary>
    public sealed record UnitProgressed(string Unit, string State, FormulaRef? Target) : IUnitMessage;

    public sealed record UnitResolved(string Unit, string State) : IUnitMessage;

    public sealed record UnitRemoved(string Unit) : IUnitMessage;

    public sealed record UnitCommandRejected(string Unit, string Reason) : IUnitMessage;

    /// <summary>Shutdown: finish the step in flight, begin no other; answered with <see cref="Drained"/>.</summary>
    public sealed record Drain : IWireMessage;

    public sealed record Drained : IWireMessage;
}
