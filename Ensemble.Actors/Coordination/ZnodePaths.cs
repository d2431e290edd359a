namespace Ensemble.Coordination;

/// <summary>ZooKeeper's path rules, shared by the embedded backend (and usable by a client-side check).</summary>
public static class ZnodePaths
{
    /// <summary>Throws StoreException(BadArguments) unless <paramref name="path"/> is a valid znode path.</summary>
    /// <param name="sequential">When true the path is validated as ZooKeeper does for sequential creates:
    /// as if a digit were appended (so "/parent/" is acceptable).</param>
    public static void Validate(string? path, bool sequential = false)
    {
        var reason = Check(path, sequential);
        if (reason is not null)
            throw new StoreException(StoreErrorCode.BadArguments, path ?? "<null>", $"invalid path '{path}': {reason}");
    }

    /// <summary>Null when valid, otherwise why not.</summary>
    public static string? Check(string? path, bool sequential = false)
    {
        if (string.IsNullOrEmpty(path)) return "path is empty";
        if (path[0] != '/') return "path must start with '/'";
        if (sequential) path += "1";
        if (path.Length == 1) return null;
        if (path[^1] == '/') return "path must not end with '/'";

        int segmentStart = 1;
        for (int i = 1; i <= path.Length; i++)
        {
            if (i == path.Length || path[i] == '/')
            {
                int len = i - segmentStart;
                if (len == 0) return "empty segment";
                if (len == 1 && path[segmentStart] == '.') return "'.' segment";
                if (len == 2 && path[segmentStart] == '.' && path[segmentStart + 1] == '.') return "'..' segment";
                segmentStart = i + 1;
                continue;
            }
            char c = path[i];
            if (c == '\0') return "NUL character";
            if ((c > '\u0000' && c <= '\u001f') || (c >= '\u007f' && c <= '\u009f')
                || (c >= '\ud800' && c <= '\uf8ff') || (c >= '\ufff0' && c <= '\uffff'))
                return $"invalid character U+{(int)c:X4}";
        }
        return null;
    }

    /// <summary>Parent of a valid non-root path ("/a" -> "/", "/a/b" -> "/a").</summary>
    public static string Parent(string path)
    {
        int i = path.LastIndexOf('/');
        return i == 0 ? "/" : path[..i];
    }

    /// <summary>Last segment of a valid non-root path.</summary>
    public static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];

    public static string Join(string parent, string child) => parent == "/" ? "/" + child : parent + "/" + child;
}
