using System.Text;
using Xunit;

namespace Ensemble.Tests.Units;

/// <summary>A unit's log read in pieces for `ensemble log`: last lines, from an offset, chunks that never cut a line.</summary>
public sealed class UnitLogReaderTests : IDisposable
{
    private readonly ScratchDirectory scratch = new("ensemble-logreader");

    public void Dispose() => scratch.Dispose();

    private string Log(string text)
    {
        var path = scratch.Combine("unit.log");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void The_last_lines_are_the_last_lines()
    {
        var path = Log("one\ntwo\nthree\nfour\n");
        var log = UnitLogReader.Read("web/0", path, from: null, tail: 2);
        Assert.Equal("three\nfour\n", log.Text);
        Assert.True(log.AtEnd);
        Assert.Equal(new FileInfo(path).Length, log.Next);
        Assert.Equal("one\ntwo\nthree\nfour\n", UnitLogReader.Read("web/0", path, null, 10).Text);
        Assert.Equal("", UnitLogReader.Read("web/0", path, null, 0).Text);
    }

    [Fact]
    public void Reading_from_an_offset_gives_what_was_written_after_it()
    {
        var path = Log("one\n");
        var first = UnitLogReader.Read("web/0", path, null, null);
        File.AppendAllText(path, "two\n");
        var next = UnitLogReader.Read("web/0", path, first.Next, null);
        Assert.Equal("two\n", next.Text);
        Assert.Equal(first.Next, next.Offset);
        Assert.True(next.AtEnd);
    }

    [Fact]
    public void A_big_log_comes_in_chunks_that_end_at_a_line_and_add_up_to_the_whole()
    {
        var line = new string('é', 1000) + "\n";
        var whole = string.Concat(Enumerable.Repeat(line, 600));
        var path = Log(whole);
        var text = new StringBuilder();
        var piece = UnitLogReader.Read("web/0", path, null, null);
        var chunks = 1;
        text.Append(piece.Text);
        while (!piece.AtEnd)
        {
            Assert.EndsWith("\n", piece.Text);
            Assert.True(piece.Next - piece.Offset <= UnitLogReader.ChunkBytes);
            piece = UnitLogReader.Read("web/0", path, piece.Next, null);
            text.Append(piece.Text);
            chunks++;
        }
        Assert.True(chunks > 1);
        Assert.Equal(whole, text.ToString());
    }

    [Fact]
    public void A_unit_that_never_ran_a_hook_has_an_empty_log() =>
        Assert.Equal(new Ensemble.Units.UnitReplies.UnitLog("web/0", "", 0, 0, true), UnitLogReader.Read("web/0", scratch.Combine("none.log"), null, 5));
}
