using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Ensemble.Cli;

/// <summary>
/// Turns what System.CommandLine found wrong with a command line into one sentence that names the thing and
/// the fix, with a suggestion when a word looks like a typo of a command or option.
/// </summary>
public static class ParseProblems
{
    /// <summary>The sentence for the first problem of <paramref name="parsed"/>, or null if it has none.</summary>
    public static string? Describe(ParseResult parsed)
    {
        // Help and the shell's completion requests speak for themselves.
        if (parsed.Action is HelpAction || parsed.Tokens.Any(t => t.Type == TokenType.Directive)) return null;
        var command = parsed.CommandResult.Command;
        var path = CommandPath(command);
        var help = command is RootCommand ? "run 'ensemble --help' for the list" : $"see '{path} --help'";

        if (parsed.UnmatchedTokens.FirstOrDefault() is { } unmatched)
            return Unknown(unmatched, command, path, help);
        // A word like --bogus that a positional argument swallowed; after `--` such words are arguments.
        foreach (var token in parsed.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-' && !char.IsAsciiDigit(token.Value[1]))
                return Unknown(token.Value, command, path, help);
        }
        if (parsed.Errors.FirstOrDefault() is not { } error) return null;

        switch (error.SymbolResult)
        {
            case ArgumentResult { Argument: var argument } when argument.Arity.MinimumNumberOfValues > 0 && error.SymbolResult.Tokens.Count == 0:
                return $"'{path}' needs {Placeholder(argument)}; {help}.";
            case OptionResult { Option: var option } when error.SymbolResult.Tokens.Count == 0 && option.Arity.MinimumNumberOfValues > 0:
                return $"'{option.Name}' needs a value; {help}.";
            case OptionResult { Option: var option } when error.Message.StartsWith("Cannot parse argument", StringComparison.Ordinal):
                return $"'{option.Name}' takes a whole number, not '{error.SymbolResult.Tokens.FirstOrDefault()?.Value}'; {help}.";
            case OptionResult { Option: var option } when error.Message.Contains("not recognized. Must be one of", StringComparison.Ordinal):
                var choices = option.CompletionSources.SelectMany(s => s(System.CommandLine.Completions.CompletionContext.Empty)).Select(c => $"'{c.Label}'").ToList();
                var listed = choices.Count > 1 ? $"{string.Join(", ", choices[..^1])} or {choices[^1]}" : string.Join("", choices);
                return $"'{option.Name}' takes {listed}, not '{error.SymbolResult.Tokens.FirstOrDefault()?.Value}'; {help}.";
        }
        // Our own validators already speak in sentences; System.CommandLine's own messages get the pointer to help.
        var message = error.Message.Split('\n')[0].Trim().TrimEnd('.');
        return $"{message}; {help}.";
    }

    private static string Unknown(string word, Command command, string path, string help)
    {
        var candidates = word.StartsWith('-')
            ? command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Concat(RecursiveOptions(command))
            : command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
        var suggestion = Typos.Closest(word, candidates) is { } closest ? $" (did you mean '{closest}'?)" : "";
        if (word.StartsWith('-'))
            return $"'{word}' is not an option of '{path}'{suggestion}; {help}.";
        if (command is RootCommand)
            return $"'{word}' is not a command{suggestion}; {help}.";
        return $"'{path}' does not take '{word}'{suggestion}; {help}.";
    }

    private static IEnumerable<string> RecursiveOptions(Command command) =>
        command.Parents.OfType<Command>().SelectMany(p => p.Options.Where(o => o.Recursive)).SelectMany(o => o.Aliases.Prepend(o.Name));

    private static string Placeholder(Argument argument) => $"<{argument.HelpName ?? argument.Name}>";

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? symbol = command; symbol is Command c; symbol = c.Parents.FirstOrDefault())
            names.Insert(0, c is RootCommand ? "ensemble" : c.Name);
        return string.Join(' ', names);
    }
}

/// <summary>The closest known word to a mistyped one, by edit distance.</summary>
public static class Typos
{
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates.Distinct())
        {
            var distance = Distance(word, candidate);
            // A prefix counts as close: 'stat' means 'status'.
            if (candidate.StartsWith(word, StringComparison.Ordinal) && word.TrimStart('-').Length >= 3) distance = Math.Min(distance, 1);
            if (distance < bestDistance) (best, bestDistance) = (candidate, distance);
        }
        return bestDistance <= Math.Max(1, word.Length / 3) ? best : null;
    }

    /// <summary>Damerau-Levenshtein (optimal string alignment): a swap of two neighbours is one edit.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
        {
            var cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }
}
