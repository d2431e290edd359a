namespace Ensemble.Units;

/// <summary>Where in a step a fault can be injected.</summary>
public enum StepPoint
{
    /// <summary>The step is persisted as current but its work has not begun.</summary>
    Before,

    /// <summary>The step's work is done but the next step is not yet persisted.</summary>
    After,
}

/// <summary>
/// Fault injection for tests: called by a unit agent around every step; throwing crashes the agent there.
/// Production wiring uses <see cref="None"/>.
/// </summary>
public interface IUnitFaults
{
    void At(string unit, UnitStep step, StepPoint point);

    public static IUnitFaults None { get; } = new NoFaults();

    private sealed class NoFaults : IUnitFaults
    {
        public void At(string unit, UnitStep step, StepPoint point) { }
    }
}
