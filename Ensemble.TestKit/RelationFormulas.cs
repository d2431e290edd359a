using System.Globalization;

namespace Ensemble.TestKit;

/// <summary>
/// Writes formulas with relation endpoints whose relation hooks are real shell scripts: each appends
/// "&lt;unit&gt; &lt;hook&gt; &lt;relation id&gt; &lt;remote unit&gt; begin|end" to control/relations.log, waits while
/// control/hold-&lt;hook&gt; exists, fails while control/fail-&lt;hook&gt; exists, and runs control/&lt;hook&gt;.sh when a
/// test put one there (to call hook tools), so a test steers every unit's relation hooks from one directory.
/// </summary>
public static class RelationFormulas
{
    public static string RelationHookScript(string hook, string control) => $$"""
        #!/bin/sh
        ctl="{{control}}"
        echo "$ENSEMBLE_UNIT_NAME {{hook}} $ENSEMBLE_RELATION_ID $ENSEMBLE_REMOTE_UNIT begin" >> "$ctl/relations.log"
        while [ -f "$ctl/hold-{{hook}}" ]; do sleep 0.05; done
        if [ -f "$ctl/fail-{{hook}}" ]; then echo "{{hook}} failing on purpose" >&2; exit 3; fi
        if [ -f "$ctl/{{hook}}.sh" ]; then . "$ctl/{{hook}}.sh" || exit 4; fi
        echo "$ENSEMBLE_UNIT_NAME {{hook}} $ENSEMBLE_RELATION_ID $ENSEMBLE_REMOTE_UNIT end" >> "$ctl/relations.log"

        """;

    /// <summary>
    /// Writes formula <paramref name="name"/> at <paramref name="revision"/> with the standard hooks of
    /// <see cref="TestFormulas"/> and, for every relation named in <paramref name="endpoints"/>
    /// (e.g. <c>requires: {db: mysql}</c> given as ("requires", "db", "mysql")), the four relation hooks.
    /// </summary>
    public static string Write(string repository, string name, int revision, params (string Kind, string Relation, string Interface)[] endpoints)
    {
        var dir = TestFormulas.Write(repository, name, revision, TestFormulas.StandardHooks.Append("config-changed"));
        var control = TestFormulas.ControlDirectory(repository);
        var metadata = $"""
            name: {name}
            revision: {revision.ToString(CultureInfo.InvariantCulture)}
            summary: test formula {name}
            description: A formula whose relation hooks record what they did.

            """;
        foreach (var kind in endpoints.Select(e => e.Kind).Distinct())
        {
            metadata += $"{kind}:\n";
            foreach (var e in endpoints.Where(e => e.Kind == kind)) metadata += $"  {e.Relation}: {e.Interface}\n";
        }
        File.WriteAllText(Path.Combine(dir, "metadata.yaml"), metadata);
        foreach (var relation in endpoints.Select(e => e.Relation).Distinct())
        foreach (var kind in new[] { "joined", "changed", "departed", "broken" })
        {
            var hook = $"{relation}-relation-{kind}";
            var path = Path.Combine(dir, "hooks", hook);
            File.WriteAllText(path, RelationHookScript(hook, control));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        return dir;
    }

    /// <summary>The relation hook trace of every unit: lines "&lt;unit&gt; &lt;hook&gt; &lt;id&gt; &lt;remote&gt; begin|end".</summary>
    public static IReadOnlyList<string> Trace(string repository)
    {
        var path = Path.Combine(TestFormulas.ControlDirectory(repository), "relations.log");
        return File.Exists(path) ? File.ReadAllLines(path).Select(l => l.Trim()).ToList() : [];
    }

    /// <summary>How many times <paramref name="unit"/> finished <paramref name="hook"/> (for <paramref name="remote"/>, when given).</summary>
    public static int Ended(string repository, string unit, string hook, string? remote = null) =>
        Trace(repository).Count(l => l.StartsWith($"{unit} {hook} ", StringComparison.Ordinal) && l.EndsWith(" end", StringComparison.Ordinal)
            && (remote is null || l.Contains($" {remote} end", StringComparison.Ordinal)));
}
