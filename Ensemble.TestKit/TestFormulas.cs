using System.Globalization;

namespace Ensemble.TestKit;

/// <summary>Writes formula directories whose hooks are real shell scripts that leave a trace a test can read.</summary>
public static class TestFormulas
{
    /// <summary>
    /// Every hook appends "&lt;hook&gt; &lt;revision&gt; begin|end" to $ENSEMBLE_UNIT_DATA_DIR/hooks.log; it fails
    /// while the data directory holds fail-&lt;hook&gt; and sleeps while it holds slow-&lt;hook&gt;, so a test
    /// steers one unit's hooks and mends them by deleting the file.
    /// </summary>
    /// The control directory works the same for every unit (fail-&lt;hook&gt;), and a hold-&lt;hook&gt; file there
    /// makes the hook wait until the test deletes it; a &lt;hook&gt;.sh there is run by the hook (to call hook tools);
    /// shared.log there collects every unit's trace.
    public static string HookScript(string hook, int revision, string control, string marker = "") => $$"""
        #!/bin/sh
        log="$ENSEMBLE_UNIT_DATA_DIR/hooks.log"
        ctl="{{control}}"
        echo "{{hook}} {{revision}} begin{{marker}}" >> "$log"
        echo "$ENSEMBLE_UNIT_NAME {{hook}} {{revision}} begin" >> "$ctl/shared.log"
        echo "running {{hook}} of $ENSEMBLE_UNIT_NAME at revision $ENSEMBLE_FORMULA_REVISION previous $ENSEMBLE_PREVIOUS_REVISION"
        while [ -f "$ctl/hold-{{hook}}" ]; do sleep 0.05; done
        if [ -f "$ENSEMBLE_UNIT_DATA_DIR/fail-{{hook}}" ] || [ -f "$ctl/fail-{{hook}}" ]; then echo "{{hook}} failing on purpose" >&2; exit 3; fi
        if [ -f "$ctl/{{hook}}.sh" ]; then . "$ctl/{{hook}}.sh" || exit 4; fi
        echo "{{hook}} {{revision}} end" >> "$log"
        echo "$ENSEMBLE_UNIT_NAME {{hook}} {{revision}} end" >> "$ctl/shared.log"

        """;

    public static readonly string[] StandardHooks = ["install", "start", "stop", "upgrade-formula"];

    /// <summary>Writes formula <paramref name="name"/> at <paramref name="revision"/> into repository/name (replacing it).</summary>
    public static string Write(string repository, string name, int revision, IEnumerable<string>? hooks = null,
        IReadOnlyDictionary<string, string>? extraFiles = null, string marker = "")
    {
        var control = ControlDirectory(repository);
        Directory.CreateDirectory(control);
        var dir = Path.Combine(repository, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(Path.Combine(dir, "hooks"));
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"), $"""
            name: {name}
            revision: {revision.ToString(CultureInfo.InvariantCulture)}
            summary: test formula {name}
            description: A formula whose hooks record what they did.
            provides:
              website: http

            """);
        foreach (var hook in hooks ?? StandardHooks)
        {
            var path = Path.Combine(dir, "hooks", hook);
            File.WriteAllText(path, HookScript(hook, revision, control, marker));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        foreach (var (file, content) in extraFiles ?? new Dictionary<string, string>())
        {
            var path = Path.Combine(dir, file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, content);
        }
        return dir;
    }

    /// <summary>The directory whose files steer every unit's hooks: beside the repository.</summary>
    public static string ControlDirectory(string repository) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(repository))!, "control");

    /// <summary>The lines the hooks of a unit logged, in order.</summary>
    public static IReadOnlyList<string> HookTrace(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "hooks.log");
        return File.Exists(path) ? File.ReadAllLines(path) : [];
    }
}
