using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Ensemble.Formulas;

/// <summary>
/// Packs a formula directory into a deterministic gzipped ustar archive: same content, same bytes, same sha256.
/// Entries are sorted by ordinal '/'-separated name (directories included, named with a trailing '/'), with mtime
/// at the Unix epoch, uid/gid 0, empty owner names and the rwx bits of each file. A <c>.git</c> directory is
/// skipped. Symbolic links are refused (the loader reports them as problems, so a formula that loads never has
/// one); fifos, sockets and devices are not expected in a formula and are not detected.
/// </summary>
public static class FormulaPacker
{
    private static readonly DateTimeOffset FixedTime = DateTimeOffset.UnixEpoch;

    /// <summary>Packs <paramref name="formula"/> as it is on disk now; <paramref name="revisionOverride"/> changes only the archived revision.</summary>
    public static FormulaBundle Pack(Formula formula, int? revisionOverride = null)
    {
        ArgumentNullException.ThrowIfNull(formula);
        if (revisionOverride < 0) throw new ArgumentOutOfRangeException(nameof(revisionOverride), "a revision is a non-negative integer");

        // Rewriting an equal revision could still change its spelling ("03", quotes) and thereby the hash; leave it alone.
        var rewrite = revisionOverride is { } r && r != formula.Metadata.Revision ? revisionOverride : null;
        var tar = BuildTar(formula.Directory, rewrite);
        var bytes = Gzip(tar);
        var id = new FormulaId(formula.Metadata.Name, revisionOverride ?? formula.Metadata.Revision);
        return new FormulaBundle(id, bytes, Sha256Hex(bytes));
    }

    /// <summary>Lowercase hex sha256, the form every bundle key uses.</summary>
    public static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static byte[] BuildTar(string directory, int? revision)
    {
        using var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var entry in FormulaTree.Walk(directory))
            {
                switch (entry.Kind)
                {
                    case FormulaTreeEntryKind.Link:
                        throw new InvalidOperationException(
                            $"cannot pack {entry.FullPath}: symbolic links are not supported in formulas; replace it with a copy of its target");
                    case FormulaTreeEntryKind.Directory:
                        writer.WriteEntry(NewEntry(TarEntryType.Directory, entry.ArchiveName, entry.FullPath));
                        break;
                    default:
                        var file = NewEntry(TarEntryType.RegularFile, entry.ArchiveName, entry.FullPath);
                        using (var data = OpenContent(entry, revision, directory))
                        {
                            file.DataStream = data;
                            writer.WriteEntry(file);
                        }
                        break;
                }
            }
        }
        return output.ToArray();
    }

    private static UstarTarEntry NewEntry(TarEntryType type, string name, string fullPath) => new(type, name)
    {
        ModificationTime = FixedTime,
        Uid = 0,
        Gid = 0,
        UserName = "",
        GroupName = "",
        Mode = UnixModes.Get(fullPath),
    };

    private static Stream OpenContent(FormulaTreeEntry entry, int? revision, string directory)
    {
        if (revision is { } n)
        {
            if (entry.RelativePath == FormulaLoader.MetadataFile)
            {
                var legacy = File.Exists(Path.Combine(directory, FormulaLoader.RevisionFile));
                return new MemoryStream(MetadataRevision.Rewrite(File.ReadAllBytes(entry.FullPath), n, appendWhenMissing: !legacy));
            }
            if (entry.RelativePath == FormulaLoader.RevisionFile)
                return new MemoryStream(System.Text.Encoding.ASCII.GetBytes(n.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n"));
        }
        return File.OpenRead(entry.FullPath);
    }

    // The gzip header carries an mtime and an OS byte outside the CRC; pin both so hosts agree on the bytes.
    private static byte[] Gzip(byte[] tar)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
            gzip.Write(tar);
        var bytes = output.ToArray();
        bytes[4] = bytes[5] = bytes[6] = bytes[7] = 0;
        bytes[9] = 3;
        return bytes;
    }
}
