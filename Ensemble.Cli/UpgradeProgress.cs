using Ensemble.Services;
using static Ensemble.Services.ServiceProtocol;

namespace Ensemble.Cli;

/// <summary>
/// `upgrade-formula --wait`: follows each unit until the upgrade is over. On a terminal it redraws one
/// line per unit in place; otherwise it prints a plain line whenever a unit's state changes.
/// </summary>
public static class UpgradeProgress
{
    public static async Task<int> WaitAsync(ControllerClient client, string service, UpgradeStarted started)
    {
        var target = started.To.ToString();
        var live = !Console.IsOutputRedirected;
        var last = new Dictionary<string, string>();
        var drawn = 0;
        while (true)
        {
            var status = await client.StatusAsync();
            if (!status.Services.TryGetValue(service, out var current))
                throw new CliException(ExitCodes.Failed, $"service '{service}' disappeared during the upgrade.");

            var lines = started.Units.Select(unit => (unit, text: Describe(current.Units.GetValueOrDefault(unit), target))).ToList();
            if (live)
            {
                if (drawn > 0) Console.Write($"\u001b[{drawn}A");
                foreach (var (unit, text) in lines) Console.WriteLine($"\u001b[2K  {unit,-16} {text}");
                drawn = lines.Count;
            }
            else
            {
                foreach (var (unit, text) in lines)
                    if (last.GetValueOrDefault(unit) != text) Console.WriteLine($"  {unit,-16} {text}");
            }
            foreach (var (unit, text) in lines) last[unit] = text;

            if (!current.UpgradeRunning)
            {
                var failed = started.Units.Where(u => current.Units.GetValueOrDefault(u) is not { } s || s.Formula != target || s.State != "running").ToList();
                Console.WriteLine(failed.Count == 0
                    ? $"all {started.Units.Count} units of '{service}' run {target}"
                    : $"{failed.Count} of {started.Units.Count} units did not reach {target}: {string.Join(", ", failed)}; see 'ensemble status' and 'ensemble log <unit>'");
                return failed.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }

    private static string Describe(EnvironmentProtocol.UnitStatus? unit, string target) => unit switch
    {
        null => "removed",
        { Error: { } error } => $"{unit.State}: {error}",
        { Upgrading: true } => $"upgrading to {target}: {unit.Progress ?? "queued"}",
        _ when unit.Formula == target && unit.State == "running" => $"running {target}",
        _ when unit.Formula != target => $"waiting to upgrade ({unit.State} {unit.Formula})",
        _ => $"{unit.State} {unit.Formula}",
    };
}
