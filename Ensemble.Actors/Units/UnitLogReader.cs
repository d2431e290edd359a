using System.Text;

namespace Ensemble.Units;

/// <summary>
/// Reads a unit's hook log in chunks small enough for one remote message, for `ensemble log` on any machine:
/// from an offset (to follow it), or its last lines. A chunk ends at a line boundary when it can.
/// </summary>
public static class UnitLogReader
{
    /// <summary>The most bytes one answer carries (far below the remote frame size).</summary>
    public const int ChunkBytes = 256 * 1024;

    public static UnitReplies.UnitLog Read(string unit, string path, long? from, int? tail)
    {
        if (!File.Exists(path)) return new UnitReplies.UnitLog(unit, "", 0, 0, AtEnd: true);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var length = file.Length;
        var start = from is { } offset ? Math.Clamp(offset, 0, length) : tail is { } lines ? StartOfLastLines(file, lines) : 0;
        var count = (int)Math.Min(ChunkBytes, length - start);
        var buffer = new byte[count];
        file.Position = start;
        file.ReadExactly(buffer);
        // Stop after the last complete line of a full chunk, so no line (or UTF-8 character) is cut in two.
        if (start + count < length && Array.LastIndexOf(buffer, (byte)'\n') is var newline and >= 0) count = newline + 1;
        return new UnitReplies.UnitLog(unit, Encoding.UTF8.GetString(buffer, 0, count), start, start + count, AtEnd: start + count >= length);
    }

    /// <summary>The offset where the last <paramref name="lines"/> lines begin, found by reading backwards.</summary>
    private static long StartOfLastLines(FileStream file, int lines)
    {
        if (lines <= 0) return file.Length;
        var position = file.Length;
        var buffer = new byte[64 * 1024];
        var newlines = 0;
        // A log ends with a newline; that one closes the last line rather than starting another.
        var skipFinal = true;
        while (position > 0)
        {
            var size = (int)Math.Min(buffer.Length, position);
            position -= size;
            file.Position = position;
            file.ReadExactly(buffer, 0, size);
            for (var i = size - 1; i >= 0; i--)
            {
                if (buffer[i] != (byte)'\n') { skipFinal = false; continue; }
                if (skipFinal) { skipFinal = false; continue; }
                if (++newlines == lines) return position + i + 1;
            }
        }
        return 0;
    }
}
