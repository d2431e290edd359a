using System.Text.Json;

namespace Ensemble.Hosting;

/// <summary>
/// DIR/connection.json, written by a controller node into its data directory at every start: what an operator's
/// CLI needs to reach the environment (<c>ensemble connect NAME FILE</c>). Controllers are the contact points,
/// "ADDR:PORT" of each controller as it advertises itself. Credentials come with a later format.
/// </summary>
public sealed record ConnectionFile(int Format, string Environment, IReadOnlyList<string> Controllers)
{
    public const string FileName = "connection.json";
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Writes the file (a temporary file renamed over it) unless it already says exactly this.</summary>
    public void Write(string path)
    {
        var text = JsonSerializer.Serialize(this, Json) + "\n";
        if (File.Exists(path) && File.ReadAllText(path) == text) return;
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads a connection file; a <see cref="FormatException"/> says in one phrase what is wrong with it.</summary>
    public static ConnectionFile Read(string path)
    {
        var info = new FileInfo(path);
        // A connection file is a few hundred bytes; anything much larger is not one.
        if (info.Length > 64 * 1024) throw new FormatException("it is too large to be a connection file");
        ConnectionFile? file;
        try { file = JsonSerializer.Deserialize<ConnectionFile>(File.ReadAllText(path), Json); }
        catch (JsonException ex) { throw new FormatException($"it is not JSON ({ex.Message.Split(" Path:")[0].TrimEnd('.')})"); }
        if (file is null) throw new FormatException("it is empty");
        if (file.Format != CurrentFormat) throw new FormatException($"its format is {file.Format}, this ensemble command reads format {CurrentFormat}");
        if (file.Controllers is not { Count: > 0 }) throw new FormatException("it names no controllers");
        if (string.IsNullOrEmpty(file.Environment)) throw new FormatException("it names no environment");
        return file;
    }
}
