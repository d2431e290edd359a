using Spectre.Console;

namespace Ensemble.Cli.Output;

/// <summary>
/// Where a command's output goes. On a terminal, Spectre.Console fits tables and text to its width (re-wrapping
/// with real line breaks, so nothing wraps behind our back in a narrow pane); when the output goes to a file or a
/// pipe, plain text without escape codes, wide enough that no line is broken.
/// </summary>
public static class Terminal
{
    public static bool IsInteractive => !Console.IsOutputRedirected;

    public static IAnsiConsole Stdout { get; } = Create();

    private static IAnsiConsole Create()
    {
        if (IsInteractive) return AnsiConsole.Console;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        console.Profile.Width = 1000;
        return console;
    }

    /// <summary>A borderless table with bold headers, columns two spaces apart: easy to read and to grep.</summary>
    public static Table Table(params string[] headers)
    {
        var table = new Table().Border(TableBorder.None);
        foreach (var header in headers)
            table.AddColumn(new TableColumn(new Text(header, new Style(decoration: Decoration.Bold))).PadLeft(0).PadRight(2));
        return table;
    }
}
