using Ensemble.Services;
using Spectre.Console;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli.Output;

/// <summary>
/// Shows an upgrade's per-unit view while it changes: on a terminal a live table (Spectre.Console redraws it in
/// place and fits it to the terminal's width, however narrow); otherwise one plain line whenever a unit moves on.
/// </summary>
public static class ProgressDisplay
{
    public static async Task<T> RunAsync<T>(Func<Action<UpgradeView>, Task<T>> follow)
    {
        if (!Terminal.IsInteractive)
        {
            var last = new Dictionary<string, string>();
            return await follow(view =>
            {
                foreach (var unit in view.Units)
                {
                    var text = Describe(unit);
                    if (last.GetValueOrDefault(unit.Unit) != text) Console.WriteLine($"  {unit.Unit,-16} {text}");
                    last[unit.Unit] = text;
                }
            });
        }
        T result = default!;
        await Terminal.Stdout.Live(Table(null))
            .Overflow(VerticalOverflow.Ellipsis)
            .Cropping(VerticalOverflowCropping.Top)
            .StartAsync(async context =>
            {
                result = await follow(view =>
                {
                    context.UpdateTarget(Table(view));
                    context.Refresh();
                });
            });
        return result;
    }

    private static Table Table(UpgradeView? view)
    {
        var table = Terminal.Table("UNIT", "PROGRESS");
        foreach (var unit in view?.Units ?? []) table.AddRow(new Text(unit.Unit), new Text(Describe(unit)));
        return table;
    }

    public static string Describe(UnitUpgradeState unit) => unit.State switch
    {
        UpgradeViews.Failed => $"failed: {unit.Cause}",
        UpgradeViews.NotStarted => "not started (the upgrade halted)",
        _ => unit.State,
    };
}
