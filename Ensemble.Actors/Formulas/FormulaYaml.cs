using System.Buffers;
using System.Text;
using System.Text.Unicode;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>
/// Reads the YAML files users hand us (metadata.yaml, config.yaml, and any other YAML a command takes), refusing
/// what could hurt a node before the node model is built: a file over the size cap (checked before reading), bytes
/// that are not UTF-8, more nodes than the cap when every alias is counted as the node it stands for (so a
/// "billion laughs" file is refused however small it is), nesting deeper than the cap, and duplicate keys.
/// Every refusal is a <see cref="FormulaProblem"/> naming the file.
/// </summary>
public static class FormulaYaml
{
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// Reads and parses the YAML file at <paramref name="path"/>, called <paramref name="file"/> in problems. Returns the
    /// first document's root node, or null when the file is empty or refused (then <paramref name="failed"/> is set).
    /// </summary>
    /// <exception cref="RepositoryAccessException">The file cannot be read.</exception>
    public static YamlNode? Read(string path, string file, FormulaLimits limits, ICollection<FormulaProblem> problems, out bool failed)
    {
        var bytes = ReadBounded(path, file, limits.MaxYamlBytes, "the limit for a YAML file", problems);
        if (bytes is null)
        {
            failed = true;
            return null;
        }
        return Parse(bytes, file, limits, problems, out failed);
    }

    /// <summary>Parses YAML <paramref name="bytes"/> under the same rules as <see cref="Read"/>.</summary>
    public static YamlNode? Parse(byte[] bytes, string file, FormulaLimits limits, ICollection<FormulaProblem> problems, out bool failed)
    {
        if (bytes.Length > limits.MaxYamlBytes)
        {
            problems.Add(OverSize(file, bytes.Length, limits.MaxYamlBytes, "the limit for a YAML file"));
            failed = true;
            return null;
        }
        var text = Decode(bytes, file, problems);
        if (text is null)
        {
            failed = true;
            return null;
        }
        return ParseText(text, file, limits, problems, out failed);
    }

    /// <summary>
    /// Reads a regular file whole, refusing (with a problem) one over <paramref name="maxBytes"/> before reading it,
    /// and one that grows past it while being read; null when refused.
    /// </summary>
    internal static byte[]? ReadBounded(string path, string file, long maxBytes, string limitName, ICollection<FormulaProblem> problems)
    {
        try
        {
            var kind = FileKinds.Of(path);
            if (kind != FileKind.Regular)
            {
                problems.Add(new FormulaProblem(file, "type", kind == FileKind.Missing
                    ? $"{file} is missing"
                    : $"{file} must be a regular file, not {Describe(kind)}; replace it with the file itself"));
                return null;
            }
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
            if (stream.Length > maxBytes)
            {
                problems.Add(OverSize(file, stream.Length, maxBytes, limitName));
                return null;
            }
            // Read one byte past the cap: a file that grew since it was measured is refused, not truncated.
            var buffer = new byte[Math.Min(stream.Length, maxBytes) + 1];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = stream.Read(buffer, total, buffer.Length - total)) > 0) total += read;
            if (total > maxBytes)
            {
                problems.Add(OverSize(file, total, maxBytes, limitName));
                return null;
            }
            return buffer[..total];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw RepositoryAccessException.Reading("file", path, e);
        }
    }

    internal static FormulaProblem OverSize(string file, long size, long max, string limitName) =>
        new(file, "size", $"{file} is {FormulaLimits.Size(size, max)}, over {limitName} ({FormulaLimits.Size(max)}); shorten it");

    private static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a directory",
        FileKind.Link => "a symbolic link",
        _ => "a fifo, socket or device",
    };

    /// <summary>Strict UTF-8 (a leading byte order mark is allowed); null with a problem naming the first bad byte.</summary>
    internal static string? Decode(byte[] bytes, string file, ICollection<FormulaProblem> problems)
    {
        var start = bytes.AsSpan().StartsWith(Bom) ? Bom.Length : 0;
        var body = bytes.AsSpan(start);
        var chars = ArrayPool<char>.Shared.Rent(Math.Max(1, body.Length));
        try
        {
            var status = Utf8.ToUtf16(body, chars, out var read, out var written, replaceInvalidSequences: false);
            if (status == OperationStatus.Done) return new string(chars, 0, written);
            var offset = start + read;
            var line = 1 + bytes.AsSpan(0, offset).Count((byte)'\n');
            problems.Add(new FormulaProblem(file, "encoding",
                $"{file} is not valid UTF-8: byte {offset} (line {line}) is 0x{bytes[offset]:X2}; save the file as UTF-8"));
            return null;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    internal static YamlNode? ParseText(string text, string file, FormulaLimits limits, ICollection<FormulaProblem> problems, out bool failed)
    {
        failed = true;
        try
        {
            if (Inspect(text, file, limits) is { } refusal)
            {
                problems.Add(refusal);
                return null;
            }
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            failed = false;
            return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            problems.Add(new FormulaProblem(file, "yaml",
                $"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {Innermost(e)}; fix the syntax and try again"));
            return null;
        }
        catch (ArgumentException e)
        {
            problems.Add(new FormulaProblem(file, "yaml", $"invalid YAML: {e.Message}; fix the syntax and try again"));
            return null;
        }
    }

    /// <summary>
    /// Walks the parser's events, which never builds nodes, to measure what building them would cost: each anchored
    /// node's expanded size is remembered, and each alias adds that size again. Null when the text is acceptable.
    /// </summary>
    private static FormulaProblem? Inspect(string text, string file, FormulaLimits limits)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, long>(StringComparer.Ordinal);
        var open = new Stack<Collection>();
        long total = 0;

        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case Scalar scalar:
                    if (DuplicateKey(open, scalar) is { } duplicate) return duplicate;
                    if (Add(1, scalar.Anchor) is { } tooManyScalars) return tooManyScalars;
                    break;
                case AnchorAlias alias:
                    MarkValue(open);
                    if (Add(anchors.GetValueOrDefault(alias.Value.Value, 1), AnchorName.Empty) is { } tooManyAliases) return tooManyAliases;
                    break;
                case NodeEvent start when start is SequenceStart or MappingStart:
                    MarkValue(open);
                    total++;
                    if (total > limits.MaxYamlNodes) return TooMany();
                    open.Push(new Collection(start is MappingStart, start.Anchor));
                    if (open.Count > limits.MaxYamlDepth)
                        return new FormulaProblem(file, "yaml",
                            $"{file} nests collections deeper than {limits.MaxYamlDepth} levels (line {start.Start.Line}); flatten it");
                    break;
                case SequenceEnd or MappingEnd:
                    var done = open.Pop();
                    if (!done.Anchor.IsEmpty) anchors[done.Anchor.Value] = done.Size;
                    if (open.TryPeek(out var parent)) parent.Size += done.Size;
                    break;
            }
        }
        return null;

        FormulaProblem? Add(long size, AnchorName anchor)
        {
            total += size;
            if (total > limits.MaxYamlNodes) return TooMany();
            if (!anchor.IsEmpty) anchors[anchor.Value] = size;
            if (open.TryPeek(out var parent)) parent.Size += size;
            return null;
        }

        FormulaProblem TooMany() => new(file, "yaml",
            $"{file} has more than {FormulaLimits.Count(limits.MaxYamlNodes)} YAML nodes when every alias is counted as the node it repeats; write it out without aliases or shorten it");

        FormulaProblem? DuplicateKey(Stack<Collection> collections, Scalar scalar)
        {
            if (!collections.TryPeek(out var map) || !map.IsMapping) return null;
            var isKey = map.ExpectKey;
            map.ExpectKey = !isKey;
            if (!isKey) return null;
            if (map.Keys.Add(scalar.Value)) return null;
            return new FormulaProblem(file, "yaml",
                $"duplicate key '{scalar.Value}' at line {scalar.Start.Line}, column {scalar.Start.Column}; remove one of them");
        }

        // A collection or alias in a mapping takes a key's or a value's place, like a scalar does.
        static void MarkValue(Stack<Collection> collections)
        {
            if (collections.TryPeek(out var map) && map.IsMapping) map.ExpectKey = !map.ExpectKey;
        }
    }

    /// <summary>An open sequence or mapping: its expanded size so far and, for a mapping, the keys seen.</summary>
    private sealed class Collection(bool isMapping, AnchorName anchor)
    {
        public bool IsMapping { get; } = isMapping;
        public AnchorName Anchor { get; } = anchor;
        public long Size { get; set; } = 1;
        public bool ExpectKey { get; set; } = true;
        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);
    }

    // YamlException prefixes its message with the marks; the innermost message is the readable part.
    private static string Innermost(YamlException e)
    {
        Exception inner = e;
        while (inner.InnerException is YamlException next) inner = next;
        return inner is YamlException ye ? StripMarks(ye) : inner.Message;
    }

    private static string StripMarks(YamlException e)
    {
        var text = e.Message;
        const string marker = "): ";
        var at = text.StartsWith('(') ? text.IndexOf(marker, StringComparison.Ordinal) : -1;
        return at >= 0 ? text[(at + marker.Length)..] : text;
    }
}
