using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Ensemble.Formulas;

namespace Ensemble.Tests.Formulas;

/// <summary>Builds gzipped tars entry by entry, so tests can craft what no honest packer would produce.</summary>
internal sealed class HostileBundle
{
    private readonly List<TarEntry> entries = [];

    public HostileBundle File(string name, string content, UnixFileMode mode = FormulaScratch.Plain)
    {
        entries.Add(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode,
        });
        return this;
    }

    public HostileBundle Directory(string name)
    {
        entries.Add(new PaxTarEntry(TarEntryType.Directory, name));
        return this;
    }

    public HostileBundle Link(TarEntryType type, string name, string target)
    {
        entries.Add(new PaxTarEntry(type, name) { LinkName = target });
        return this;
    }

    public HostileBundle Special(TarEntryType type, string name)
    {
        entries.Add(new PaxTarEntry(type, name));
        return this;
    }

    public (byte[] Bytes, string Sha256) Build()
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            foreach (var entry in entries) writer.WriteEntry(entry);
        }
        var bytes = output.ToArray();
        return (bytes, FormulaPacker.Sha256Hex(bytes));
    }
}
