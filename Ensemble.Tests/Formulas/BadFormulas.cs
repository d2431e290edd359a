using System.Diagnostics;
using System.Text;
using Ensemble.Formulas;
using Xunit;

namespace Ensemble.Tests.Formulas;

/// <summary>
/// One hostile or broken formula: what is done to an otherwise valid formula, and the problem that must name it
/// (file, field, and a part of the message). <see cref="RefusedByPacker"/> marks the ones the packer must refuse on
/// its own, for a formula handed to it without loading (or changed after loading).
/// </summary>
public sealed record BadFormula(string Case, Action<string> Break, string File, string Field, string Message, bool RefusedByPacker = false)
{
    public override string ToString() => Case;
}

/// <summary>The catalogue of bad formulas every entry point is tested with: loading, packing, deploy and upgrade.</summary>
public static class BadFormulas
{
    private const long MiB = 1024 * 1024;

    /// <summary>Writes a valid formula at <paramref name="directory"/> (named after it) with an install hook.</summary>
    public static void WriteValid(string directory, int revision)
    {
        Directory.CreateDirectory(Path.Combine(directory, "hooks"));
        System.IO.File.WriteAllText(Path.Combine(directory, "metadata.yaml"),
            $"name: {Path.GetFileName(directory)}\nrevision: {revision}\nsummary: a formula\ndescription: made bad by a test\n");
        var install = Path.Combine(directory, "hooks", "install");
        System.IO.File.WriteAllText(install, "#!/bin/sh\necho install\n");
        FormulaScratch.SetMode(install, FormulaScratch.Executable);
    }

    /// <summary>Writes the valid formula and breaks it.</summary>
    public static string Write(BadFormula bad, string directory, int revision)
    {
        WriteValid(directory, revision);
        bad.Break(directory);
        return directory;
    }

    public static readonly IReadOnlyList<BadFormula> All =
    [
        // ---- sizes and counts of the tree, checked from the file system before anything is read ----
        new("file far over the file size cap (sparse, 1.2 GiB)", d => Sparse(d, "hooks/blob", 1229 * MiB),
            "hooks/blob", "size", "1.2 GiB is over the 128 MiB limit for one file in a formula", RefusedByPacker: true),
        new("file just over the file size cap", d => Sparse(d, "files/big", 128 * MiB + 1),
            "files/big", "size", "134,217,729 bytes is over the 128 MiB limit for one file", RefusedByPacker: true),
        new("files adding up to more than the formula cap", d => { for (var i = 0; i < 5; i++) Sparse(d, $"files/part{i}", 60 * MiB); },
            "(formula)", "size", "the formula's files add up to 300 MiB, over the 256 MiB limit for a formula", RefusedByPacker: true),
        new("more entries than the entry cap", d => Many(d, "files", 10_001),
            "(formula)", "entries", "more than 10,000 files and directories", RefusedByPacker: true),
        new("directories nested past the depth cap", d => Deep(d, 33),
            string.Join('/', Enumerable.Repeat("d", 33)), "depth", "it is 33 levels deep, over the limit of 32 levels", RefusedByPacker: true),
        new("file name over 100 bytes", d => Text(d, "files/" + new string('n', 101), "x"),
            "files/" + new string('n', 101), "name", "101 bytes long, over the limit of 100 bytes", RefusedByPacker: true),
        new("file name of 51 two-byte characters (102 bytes)", d => Text(d, "files/" + new string('é', 51), "x"),
            "files/" + new string('é', 51), "name", "102 bytes long, over the limit of 100 bytes", RefusedByPacker: true),
        new("path that cannot be split into 155 bytes of directories and a 100-byte name", d => Text(d, $"{new string('a', 80)}/{new string('b', 80)}/{new string('c', 80)}", "x"),
            $"{new string('a', 80)}/{new string('b', 80)}/{new string('c', 80)}", "path", "its path is 242 bytes long and cannot be split into at most 155 bytes of directories and a name of at most 100 bytes", RefusedByPacker: true),
        new("directory of a 100-byte name below 55 bytes of directories", d => Directory.CreateDirectory(Path.Combine(d, new string('a', 55), new string('g', 100))),
            new string('a', 55) + "/" + new string('g', 100), "path", "its path is 157 bytes long and cannot be split", RefusedByPacker: true),
        new("more executables in hooks/ than the hook cap (install and 1,000 more)", d => ManyHooks(d, 1_000),
            "hooks", "count", "1,001 executables, over the limit of 1,000"),

        // ---- what a formula may not hold ----
        new("symbolic link to a hook", d => System.IO.File.CreateSymbolicLink(Path.Combine(d, "hooks", "start"), "install"),
            "hooks/start", "type", "symbolic links are not supported", RefusedByPacker: true),
        new("symbolic link to a directory outside", d => Directory.CreateSymbolicLink(Path.Combine(d, "etc"), "/etc"),
            "etc", "type", "symbolic links are not supported", RefusedByPacker: true),
        new("dangling symbolic link", d => System.IO.File.CreateSymbolicLink(Path.Combine(d, "gone"), "/nonexistent/target"),
            "gone", "type", "symbolic links are not supported", RefusedByPacker: true),
        new("metadata.yaml as a link to a system file", d => Replace(d, "metadata.yaml", p => System.IO.File.CreateSymbolicLink(p, "/etc/passwd")),
            "metadata.yaml", "type", "symbolic links are not supported", RefusedByPacker: true),
        new("fifo among the files", d => Fifo(d, "files/pipe"),
            "files/pipe", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("fifo as a hook", d => Replace(d, "hooks/install", p => Fifo(d, "hooks/install")),
            "hooks/install", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("fifo as metadata.yaml", d => Replace(d, "metadata.yaml", p => Fifo(d, "metadata.yaml")),
            "metadata.yaml", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("fifo as config.yaml", d => Fifo(d, "config.yaml"),
            "config.yaml", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("fifo as the legacy revision file", d => { Metadata(d, $"name: {Path.GetFileName(d)}\n"); Fifo(d, "revision"); },
            "revision", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("unix socket", d => Socket(d, "files/sock"),
            "files/sock", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("character device", d => Device(d, "files/null"),
            "files/null", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("hooks is a file", d => Replace(d, "hooks", p => System.IO.File.WriteAllText(p, "#!/bin/sh\n")),
            "hooks", "type", "hooks must be a directory of executables, not a file"),
        new("hooks is a fifo", d => Replace(d, "hooks", p => Fifo(d, "hooks")),
            "hooks", "type", "fifos, sockets and devices are not supported", RefusedByPacker: true),
        new("hook not executable", d => FormulaScratch.SetMode(Path.Combine(d, "hooks", "install"), FormulaScratch.Plain),
            "hooks/install", "mode", "hook is not executable; run 'chmod +x hooks/install'"),
        new("metadata.yaml is a directory", d => Replace(d, "metadata.yaml", p => Directory.CreateDirectory(p)),
            "metadata.yaml", "type", "metadata.yaml must be a file, not a directory"),
        new("metadata.yaml missing", d => System.IO.File.Delete(Path.Combine(d, "metadata.yaml")),
            "metadata.yaml", "(file)", "metadata.yaml is missing"),

        // ---- YAML: size, encoding, expansion, nesting, keys ----
        new("billion laughs in metadata.yaml", d => Metadata(d, Basic(d) + BillionLaughs),
            "metadata.yaml", "yaml", "more than 10,000 YAML nodes when every alias is counted"),
        new("billion laughs in config.yaml", d => Text(d, "config.yaml", "options:\n  port: {type: int}\n" + BillionLaughs),
            "config.yaml", "yaml", "more than 10,000 YAML nodes when every alias is counted"),
        new("quadratic alias blowup in metadata.yaml", d => Metadata(d, Basic(d) + Quadratic),
            "metadata.yaml", "yaml", "more than 10,000 YAML nodes"),
        new("aliases of aliased mappings in config.yaml", d => Text(d, "config.yaml", NestedMappingLaughs),
            "config.yaml", "yaml", "more than 10,000 YAML nodes"),
        new("plain list over the node cap in metadata.yaml", d => Metadata(d, Basic(d) + "tags:\n" + string.Concat(Enumerable.Repeat("  - x\n", 10_001))),
            "metadata.yaml", "yaml", "more than 10,000 YAML nodes"),
        new("flow sequences nested 100,000 deep in metadata.yaml", d => Metadata(d, Basic(d) + "deep: " + new string('[', 100_000) + new string(']', 100_000) + "\n"),
            "metadata.yaml", "yaml", "nests collections deeper than 64 levels"),
        new("block mappings nested 100 deep in config.yaml", d => Text(d, "config.yaml", string.Concat(Enumerable.Range(0, 100).Select(i => new string(' ', i * 2) + $"k{i}:\n")) + new string(' ', 200) + "v\n"),
            "config.yaml", "yaml", "nests collections deeper than 64 levels"),
        new("metadata.yaml over the YAML size cap", d => Metadata(d, Basic(d) + "# " + new string('x', (int)MiB) + "\n"),
            "metadata.yaml", "size", "over the limit for a YAML file (1 MiB)"),
        new("config.yaml over the YAML size cap", d => Text(d, "config.yaml", "options: {}\n# " + new string('x', (int)MiB) + "\n"),
            "config.yaml", "size", "over the limit for a YAML file (1 MiB)"),
        new("metadata.yaml a sparse 2 GiB file", d => Replace(d, "metadata.yaml", p => Sparse(d, "metadata.yaml", 2048 * MiB)),
            "metadata.yaml", "size", "metadata.yaml is 2 GiB, over the limit for a YAML file (1 MiB)"),
        new("invalid UTF-8 in metadata.yaml", d => Bytes(d, "metadata.yaml", [.. Encoding.UTF8.GetBytes(Basic(d) + "summary: caf"), 0xC3, 0x28, (byte)'\n']),
            "metadata.yaml", "encoding", "is not valid UTF-8: byte"),
        new("invalid UTF-8 in config.yaml", d => Bytes(d, "config.yaml", [.. "options:\n  x:\n    default: "u8, 0xFF, (byte)'\n']),
            "config.yaml", "encoding", "config.yaml is not valid UTF-8: byte 27 (line 3) is 0xFF; save the file as UTF-8"),
        new("metadata.yaml in UTF-16", d => Bytes(d, "metadata.yaml", [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes(Basic(d))]),
            "metadata.yaml", "encoding", "byte 0 (line 1) is 0xFF"),
        new("overlong UTF-8 encoding of '/' in metadata.yaml", d => Bytes(d, "metadata.yaml", [.. Encoding.UTF8.GetBytes(Basic(d) + "summary: a"), 0xC0, 0xAF, (byte)'\n']),
            "metadata.yaml", "encoding", "is not valid UTF-8"),
        new("UTF-8-encoded surrogate in metadata.yaml", d => Bytes(d, "metadata.yaml", [.. Encoding.UTF8.GetBytes(Basic(d) + "summary: a"), 0xED, 0xA0, 0x80, (byte)'\n']),
            "metadata.yaml", "encoding", "is not valid UTF-8"),
        new("truncated UTF-8 sequence at the end of config.yaml", d => Bytes(d, "config.yaml", [.. "options: {}\n# caf"u8, 0xC3]),
            "config.yaml", "encoding", "is not valid UTF-8: byte 17 (line 2)"),
        new("duplicate key in metadata.yaml", d => Metadata(d, Basic(d) + $"name: {Path.GetFileName(d)}\n"),
            "metadata.yaml", "yaml", "duplicate key 'name' at line 5, column 1; remove one of them"),
        new("duplicate option in config.yaml", d => Text(d, "config.yaml", "options:\n  port: {type: int}\n  port: {type: string}\n"),
            "config.yaml", "yaml", "duplicate key 'port' at line 3"),
        new("YAML syntax error in metadata.yaml", d => Metadata(d, Basic(d) + "tagline: [unclosed\n"),
            "metadata.yaml", "yaml", "invalid YAML at line"),
        new("undefined alias in metadata.yaml", d => Metadata(d, Basic(d) + "tagline: *nowhere\n"),
            "metadata.yaml", "yaml", "invalid YAML at line"),
        new("empty metadata.yaml", d => Metadata(d, ""),
            "metadata.yaml", "(document)", "metadata.yaml is empty"),
        new("metadata.yaml is a list", d => Metadata(d, "- name\n- revision\n"),
            "metadata.yaml", "(document)", "must be a mapping of fields, found a list"),

        // ---- revision ----
        new("revision over the cap", d => Metadata(d, Basic(d, "1000000001")),
            "metadata.yaml", "revision", "revision 1000000001 is over the limit of 1,000,000,000"),
        new("revision past int range", d => Metadata(d, Basic(d, "99999999999999999999")),
            "metadata.yaml", "revision", "revision 99999999999999999999 is over the limit of 1,000,000,000"),
        new("negative revision", d => Metadata(d, Basic(d, "-1")),
            "metadata.yaml", "revision", "revision '-1' is not a non-negative integer"),
        new("fractional revision", d => Metadata(d, Basic(d, "1.5")),
            "metadata.yaml", "revision", "revision '1.5' is not a non-negative integer"),
        new("revision in hex", d => Metadata(d, Basic(d, "0x10")),
            "metadata.yaml", "revision", "revision '0x10' is not a non-negative integer"),
        new("revision as a list", d => Metadata(d, Basic(d, "[1, 2]")),
            "metadata.yaml", "revision", "revision 'a list' is not a non-negative integer"),
        new("revision missing", d => Metadata(d, $"name: {Path.GetFileName(d)}\n"),
            "metadata.yaml", "revision", "revision is missing"),
        new("legacy revision file over the cap", d => { Metadata(d, $"name: {Path.GetFileName(d)}\n"); Text(d, "revision", "2000000000\n"); },
            "revision", "revision", "revision 2000000000 is over the limit of 1,000,000,000"),
        new("legacy revision file not a number", d => { Metadata(d, $"name: {Path.GetFileName(d)}\n"); Text(d, "revision", "seven\n"); },
            "revision", "revision", "revision file holds 'seven'"),
        new("legacy revision file of a MiB", d => { Metadata(d, $"name: {Path.GetFileName(d)}\n"); Text(d, "revision", new string('1', (int)MiB)); },
            "revision", "size", "over the limit for the revision file (64 bytes)"),
        new("legacy revision file not UTF-8", d => { Metadata(d, $"name: {Path.GetFileName(d)}\n"); Bytes(d, "revision", [0x31, 0xFE]); },
            "revision", "encoding", "revision is not valid UTF-8: byte 1"),

        // ---- name ----
        new("name over 64 characters", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: " + new string('n', 65))),
            "metadata.yaml", "name", "is 65 characters long, over the limit of 64 for a formula name"),
        new("name with capitals", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: MySQL")),
            "metadata.yaml", "name", "name 'MySQL' may only hold lowercase letters, digits and '-', starting with a letter"),
        new("name with an underscore", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: my_sql")),
            "metadata.yaml", "name", "may only hold lowercase letters"),
        new("name starting with a digit", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: 9lives")),
            "metadata.yaml", "name", "may only hold lowercase letters"),
        new("name climbing out of the repository", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: ../../etc")),
            "metadata.yaml", "name", "name '../../etc' may only hold lowercase letters"),
        new("name with a newline", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: \"a\\nb\"")),
            "metadata.yaml", "name", "name 'a\\u000ab' may only hold lowercase letters"),
        new("name differs from the directory", d => Metadata(d, Basic(d).Replace($"name: {Path.GetFileName(d)}", "name: other")),
            "metadata.yaml", "name", "name 'other' differs from the directory name"),
        new("name missing", d => Metadata(d, "revision: 1\n"),
            "metadata.yaml", "name", "name is missing"),

        // ---- config.yaml ----
        new("more options than the option cap", d => Text(d, "config.yaml", "options:\n" + string.Concat(Enumerable.Range(0, 1_001).Select(i => $"  o{i}: {{}}\n"))),
            "config.yaml", "options", "declares 1,001 options, over the limit of 1,000"),
        new("option of unknown type", d => Text(d, "config.yaml", "options:\n  port:\n    type: integer\n"),
            "config.yaml", "options.port.type", "unknown type 'integer'"),
        new("option default of the wrong type", d => Text(d, "config.yaml", "options:\n  port:\n    type: int\n    default: lots\n"),
            "config.yaml", "options.port.default", "not a valid int"),
        new("options as a list", d => Text(d, "config.yaml", "options:\n  - port\n"),
            "config.yaml", "options", "options must map option names to settings, found a list"),
        new("relation without interface", d => Metadata(d, Basic(d) + "provides:\n  db: {limit: 1}\n"),
            "metadata.yaml", "provides.db", "relation 'db' has no interface"),
    ];

    public static TheoryData<string> Cases(bool packerOnly = false)
    {
        var data = new TheoryData<string>();
        foreach (var bad in All.Where(b => !packerOnly || b.RefusedByPacker)) data.Add(bad.Case);
        return data;
    }

    public static BadFormula Named(string name) => All.Single(b => b.Case == name);

    /// <summary>The problem <paramref name="bad"/> must have produced, with the problems there were if it did not.</summary>
    public static void AssertNamed(BadFormula bad, IEnumerable<FormulaProblem> problems)
    {
        var all = problems.ToList();
        Assert.True(all.Any(p => p.File == bad.File && p.Field == bad.Field && p.Message.Contains(bad.Message, StringComparison.Ordinal)),
            $"{bad.Case}: expected '{bad.File}: {bad.Field}: …{bad.Message}…' among: {string.Join(" | ", all)}");
    }

    // ---- the makings ----

    private const string BillionLaughs = """
        lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        lol2: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        lol3: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        lol4: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        lol5: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        lol6: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        lol7: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        lol8: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        lol9: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]

        """;

    private static readonly string Quadratic =
        "big: &big [" + string.Join(",", Enumerable.Repeat("x", 3_000)) + "]\nuse: [*big, *big, *big, *big]\n";

    private const string NestedMappingLaughs = """
        a: &a {k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v}
        b: &b {k1: *a, k2: *a, k3: *a, k4: *a, k5: *a, k6: *a, k7: *a, k8: *a}
        c: &c {k1: *b, k2: *b, k3: *b, k4: *b, k5: *b, k6: *b, k7: *b, k8: *b}
        d: &d {k1: *c, k2: *c, k3: *c, k4: *c, k5: *c, k6: *c, k7: *c, k8: *c}
        options: {k1: *d, k2: *d}

        """;

    private static string Basic(string dir, string revision = "1") =>
        $"name: {Path.GetFileName(dir)}\nrevision: {revision}\nsummary: s\ndescription: d\n";

    private static void Metadata(string dir, string text) => Text(dir, "metadata.yaml", text);

    private static void Text(string dir, string relative, string text)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, text);
    }

    private static void Bytes(string dir, string relative, byte[] bytes) => System.IO.File.WriteAllBytes(Path.Combine(dir, relative), bytes);

    private static void Sparse(string dir, string relative, long length)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.SetLength(length);
    }

    private static void Many(string dir, string relative, int count)
    {
        var folder = Path.Combine(dir, relative);
        Directory.CreateDirectory(folder);
        for (var i = 0; i < count; i++) System.IO.File.WriteAllText(Path.Combine(folder, $"f{i}"), "");
    }

    private static void ManyHooks(string dir, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var path = Path.Combine(dir, "hooks", $"h{i}");
            System.IO.File.WriteAllText(path, "#!/bin/sh\n");
            FormulaScratch.SetMode(path, FormulaScratch.Executable);
        }
    }

    private static void Deep(string dir, int levels)
    {
        var path = Path.Combine([dir, .. Enumerable.Repeat("d", levels)]);
        Directory.CreateDirectory(path);
        System.IO.File.WriteAllText(Path.Combine(path, "f"), "deep");
    }

    private static void Replace(string dir, string relative, Action<string> create)
    {
        var path = Path.Combine(dir, relative);
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        else if (System.IO.File.Exists(path)) System.IO.File.Delete(path);
        create(path);
    }

    private static void Fifo(string dir, string relative)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Run("mkfifo", path);
    }

    private static void Device(string dir, string relative)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Run("mknod", path, "c", "1", "3");
    }

    private static void Socket(string dir, string relative)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // .NET removes the socket file of a socket it closes; Python leaves it.
        Run("python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path);
    }

    private static void Run(string command, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{command} {string.Join(' ', arguments)} failed: {error}");
    }
}
