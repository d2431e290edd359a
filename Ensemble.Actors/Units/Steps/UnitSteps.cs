namespace Ensemble.Units.Steps;

/// <summary>The step each <see cref="UnitStep"/> names; hosts use <see cref="Standard"/>, a test kit may wrap them.</summary>
public static class UnitSteps
{
    public static IReadOnlyDictionary<UnitStep, IUnitStep> Standard { get; } = new Dictionary<UnitStep, IUnitStep>
    {
        [UnitStep.Install] = new InstallStep(),
        [UnitStep.Start] = new StartStep(),
        [UnitStep.Download] = new DownloadStep(),
        [UnitStep.Stop] = new StopStep(),
        [UnitStep.Extract] = new ExtractStep(),
        [UnitStep.UpgradeHook] = new UpgradeHookStep(),
        [UnitStep.Record] = new RecordStep(),
    };
}
