using System.Formats.Tar;
using YamlDotNet.RepresentationModel;

namespace Ensemble.Formulas;

/// <summary>
/// What an inspected bundle holds: its formula's identity, as its own metadata.yaml (or revision file) says, its
/// metadata (relation endpoints) and its configuration options.
/// </summary>
public sealed record InspectedBundle(FormulaId Id, int Hooks, FormulaMetadata Metadata, IReadOnlyList<ConfigOption> Config);

/// <summary>
/// Checks a bundle that came from elsewhere (an upload) without unpacking it: every entry under the rules and caps
/// unpacking applies (<see cref="BundleEntries"/>), then metadata.yaml, config.yaml and the legacy revision file,
/// read under their size caps with the bounded YAML reader and validated as <see cref="FormulaLoader"/> validates a
/// directory, and the hooks. Streamed: a few buffers plus the YAML files (at most 1 MiB each) in memory.
/// </summary>
public static class BundleInspector
{
    /// <param name="describedAs">How the bundle is named in a validation problem, e.g. "the uploaded bundle of local:x-2".</param>
    /// <exception cref="BundleRejectedException">An entry breaks a rule of bundles (a link, '..', a cap, not a gzipped tar).</exception>
    /// <exception cref="FormulaValidationException">The formula in it is invalid; every problem names its file.</exception>
    public static InspectedBundle Inspect(Stream bundle, string describedAs, FormulaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        limits ??= FormulaLimits.Default;
        if (bundle.CanSeek && bundle.Length - bundle.Position > limits.MaxBundleBytes)
            throw new BundleRejectedException(
                $"bundle is {FormulaLimits.Size(bundle.Length - bundle.Position, limits.MaxBundleBytes)}, over the {FormulaLimits.Size(limits.MaxBundleBytes)} limit for a compressed bundle");

        var problems = new List<FormulaProblem>();
        var visitor = new Collector(limits, problems);
        BundleEntries.Walk(bundle, limits, visitor);

        var metadataRoot = Parse(visitor.Metadata, FormulaLoader.MetadataFile, limits, problems, out var metadataFailed);
        var metadata = MetadataReader.FromYaml(metadataRoot, metadataFailed, visitor.Metadata.Missing, directoryName: null,
            () => (!visitor.Revision.Missing, visitor.Revision.Bytes), limits, problems, out _);
        var configRoot = Parse(visitor.Config, FormulaLoader.ConfigFile, limits, problems, out var configFailed);
        var config = ConfigReader.FromYaml(configRoot, configFailed, limits, problems);
        var hooks = FormulaLoader.ReadHooks(visitor.HookEntries, limits, problems);

        if (problems.Count > 0 || metadata is null) throw new FormulaValidationException(describedAs, problems);
        return new InspectedBundle(new FormulaId(metadata.Name, metadata.Revision), hooks.Count, metadata, config);
    }

    private static YamlNode? Parse(SmallFile file, string name, FormulaLimits limits, List<FormulaProblem> problems, out bool failed)
    {
        failed = true;
        if (file.Missing) return null;
        if (file.Bytes is null) return null; // refused while read; the problem is recorded
        return FormulaYaml.Parse(file.Bytes, name, limits, problems, out failed);
    }

    /// <summary>A top-level file the inspection reads: absent, refused (Bytes null, problem recorded), or its bytes.</summary>
    private sealed class SmallFile
    {
        public bool Missing { get; set; } = true;
        public byte[]? Bytes { get; set; }
    }

    /// <summary>Reads the few files validation needs and notes the hooks' modes; everything else is only walked.</summary>
    private sealed class Collector(FormulaLimits limits, List<FormulaProblem> problems) : IBundleVisitor
    {
        public SmallFile Metadata { get; } = new();
        public SmallFile Config { get; } = new();
        public SmallFile Revision { get; } = new();
        public List<(string RelativePath, bool IsFile, Func<UnixFileMode> Mode)> HookEntries { get; } = [];

        public void Directory(TarEntry entry, string relativePath, UnixFileMode mode)
        {
            if (relativePath is FormulaLoader.MetadataFile or FormulaLoader.ConfigFile)
            {
                problems.Add(new FormulaProblem(relativePath, "type", $"{relativePath} must be a file, not a directory; move the directory aside"));
                Of(relativePath)!.Missing = false;
            }
        }

        public void File(TarEntry entry, string relativePath, UnixFileMode mode, Stream content)
        {
            if (relativePath == FormulaLoader.HooksDirectory || relativePath.StartsWith(FormulaLoader.HooksDirectory + "/", StringComparison.Ordinal))
                HookEntries.Add((relativePath, true, () => mode));
            if (Of(relativePath) is not { } file) return;
            file.Missing = false;
            var (cap, limitName) = relativePath == FormulaLoader.RevisionFile
                ? (limits.MaxRevisionFileBytes, "the limit for the revision file")
                : (limits.MaxYamlBytes, "the limit for a YAML file");
            if (entry.Length > cap)
            {
                problems.Add(FormulaYaml.OverSize(relativePath, entry.Length, cap, limitName));
                return;
            }
            // Read one byte past the cap: content longer than its header said is refused, not truncated.
            var buffer = new byte[entry.Length + 1];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = content.Read(buffer, total, buffer.Length - total)) > 0) total += read;
            if (total > cap)
            {
                problems.Add(FormulaYaml.OverSize(relativePath, total, cap, limitName));
                return;
            }
            file.Bytes = buffer[..total];
        }

        private SmallFile? Of(string relativePath) => relativePath switch
        {
            FormulaLoader.MetadataFile => Metadata,
            FormulaLoader.ConfigFile => Config,
            FormulaLoader.RevisionFile => Revision,
            _ => null,
        };
    }
}
