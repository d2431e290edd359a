using Ensemble.Formulas;
using Ensemble.Serialization;

namespace Ensemble.Units;

/// <summary>What unit agents are asked; routed by unit name through the machine agent.</summary>
public static class UnitRequests
{
    /// <summary>A request addressed to one unit.</summary>
    public interface IUnitMessage : IWireMessage
    {
        string Unit { get; }
    }

    public sealed record DeployUnit(string Unit, FormulaRef Formula) : IUnitMessage;

    /// <summary>Idempotent: sending it again while the upgrade runs only re-subscribes the sender to its outcome.</summary>
    public sealed record UpgradeUnit(string Unit, FormulaRef Formula) : IUnitMessage;

    /// <summary>`resolved [--retry]`: leave the unit's error state, running the failed step again or going on past it.</summary>
    public sealed record ResolveUnitError(string Unit, bool Retry) : IUnitMessage;

    public sealed record RemoveUnit(string Unit) : IUnitMessage;

    /// <summary>Answered with <see cref="UnitReplies.UnitReport"/>: the lifecycle state as the unit's agent sees it.</summary>
    public sealed record GetUnitReport(string Unit) : IUnitMessage;

    /// <summary>Shutdown: finish the step in flight, begin no other; answered with <see cref="UnitReplies.Drained"/>.</summary>
    public sealed record Drain : IWireMessage;

    /// <summary>
    /// A piece of the unit's hook log, answered by its machine agent with <see cref="UnitReplies.UnitLog"/>:
    /// from byte offset From, or (From null) its last Tail lines (Tail null: from the start), at most a chunk.
    /// </summary>
    public sealed record ReadUnitLog(string Unit, long? From, int? Tail) : IUnitMessage;
}

/// <summary>What unit agents answer, and tell those waiting on an upgrade.</summary>
public static class UnitReplies
{
    public sealed record UnitReport(string Unit, UnitPhase State, FormulaRef? Formula, FormulaRef? Target, string? Error) : IWireMessage;

    /// <summary>The upgrade is done and recorded in the store.</summary>
    public sealed record UnitUpgraded(string Unit, FormulaRef Formula) : IWireMessage;

    /// <summary>The unit entered an error state (State) and waits there for `resolved`.</summary>
    public sealed record UnitEnteredError(string Unit, UnitPhase State, string Cause) : IWireMessage;

    /// <summary>Sent to those waiting on an upgrade at each step it takes.</summary>
    public sealed record UnitProgressed(string Unit, UnitPhase State, FormulaRef? Target) : IWireMessage;

    public sealed record UnitResolved(string Unit, UnitPhase State) : IWireMessage;

    public sealed record UnitRemoved(string Unit) : IWireMessage;

    public sealed record UnitCommandRejected(string Unit, string Reason) : IWireMessage;

    public sealed record Drained : IWireMessage;

    /// <summary>Log text from Offset to Next (the offset to ask for the rest), and whether the end of the log was reached.</summary>
    public sealed record UnitLog(string Unit, string Text, long Offset, long Next, bool AtEnd) : IWireMessage;
}
