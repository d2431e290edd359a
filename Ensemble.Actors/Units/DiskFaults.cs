namespace Ensemble.Units;

/// <summary>
/// Failures of a machine's disk as a unit agent meets them — read-only, full, permission denied — told
/// apart from bugs, and described for an operator: what could not be done, where, and how to go on.
/// </summary>
public static class DiskFaults
{
    public static bool IsDiskFault(Exception ex) =>
        ex.GetBaseException() is IOException or UnauthorizedAccessException;

    /// <summary>One sentence: the failed action (naming the path), the system's reason, the fix.</summary>
    public static string Describe(string action, Exception ex, string directory, string unit) =>
        $"{action}: {Reason(ex)}; make {directory} writable (and check the disk has room), then run 'ensemble resolved --retry {unit}'";

    /// <summary>
    /// The system's reason, e.g. "read-only file system (.../state.json.tmp)": .NET words it as
    /// "Read-only file system : '/path'", which reads badly inside a sentence.
    /// </summary>
    public static string Reason(Exception ex)
    {
        var message = ex.GetBaseException().Message.Trim().TrimEnd('.');
        var at = message.LastIndexOf(" : '", StringComparison.Ordinal);
        if (at > 0 && message.EndsWith('\''))
            message = $"{message[..at]} ({message[(at + 4)..^1]})";
        return message.Length > 0 ? char.ToLowerInvariant(message[0]) + message[1..] : "unknown error";
    }
}
