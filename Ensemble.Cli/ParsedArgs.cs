namespace Ensemble.Cli;

/// <summary>A verb's arguments: options that take a value, flags, and positionals; anything else is a usage error.</summary>
public sealed class ParsedArgs
{
    private readonly Dictionary<string, string> _values = new();
    private readonly HashSet<string> _flags = [];

    public IReadOnlyList<string> Positionals { get; }

    private ParsedArgs(List<string> positionals) => Positionals = positionals;

    public static ParsedArgs Parse(string verb, IReadOnlyList<string> args, IReadOnlySet<string> valueOptions, IReadOnlySet<string> flagOptions)
    {
        var positionals = new List<string>();
        var parsed = new ParsedArgs(positionals);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-') || arg == "-")
            {
                positionals.Add(arg);
                continue;
            }
            var name = arg;
            string? inline = null;
            var eq = arg.IndexOf('=');
            if (eq > 0) { name = arg[..eq]; inline = arg[(eq + 1)..]; }
            if (flagOptions.Contains(name) && inline is null) { parsed._flags.Add(name); continue; }
            if (!valueOptions.Contains(name))
                throw new CliException(ExitCodes.Usage, $"'{name}' is not an option of 'ensemble {verb}'; see 'ensemble {verb} --help'.");
            if (inline is null)
            {
                if (i + 1 >= args.Count) throw new CliException(ExitCodes.Usage, $"'{name}' needs a value; see 'ensemble {verb} --help'.");
                inline = args[++i];
            }
            parsed._values[name] = inline;
        }
        return parsed;
    }

    public bool Has(string flag) => _flags.Contains(flag);

    public string? Value(params string[] names) => names.Select(n => _values.GetValueOrDefault(n)).FirstOrDefault(v => v is not null);

    public int? Int(string verb, params string[] names)
    {
        var text = Value(names);
        if (text is null) return null;
        return int.TryParse(text, out var n) && n >= 0 ? n
            : throw new CliException(ExitCodes.Usage, $"{names[0]} takes a whole number, not '{text}'; see 'ensemble {verb} --help'.");
    }
}
