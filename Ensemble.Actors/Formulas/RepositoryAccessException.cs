using System.Runtime.InteropServices;

namespace Ensemble.Formulas;

/// <summary>
/// A repository, or a directory or file in it, could not be read (permission denied, an I/O error). The message is
/// one sentence naming the path, the cause and what to do; the operating system's error stays the inner exception.
/// </summary>
public class RepositoryAccessException(string message, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>Wraps a failure to read <paramref name="path"/>, a <paramref name="what"/> ("formula directory", "file", ...).</summary>
    public static RepositoryAccessException Reading(string what, string path, Exception cause) =>
        new($"cannot read {what} {path}: {Explain(cause)}", cause);

    internal static string Explain(Exception cause) => cause switch
    {
        UnauthorizedAccessException =>
            $"permission denied; make it readable, and its directories searchable, by the user the node runs as ({Environment.UserName}), for example with 'chmod -R a+rX', or use another repository",
        _ => $"{Reason(cause)}; check the disk or mount that holds it, then try again",
    };

    // .NET puts the raw errno in HResult of the I/O errors it raises on Unix; its text is the readable part.
    internal static string Reason(Exception cause)
    {
        var text = cause.HResult is > 0 and < 4096 ? Marshal.GetPInvokeErrorMessage(cause.HResult) : cause.Message;
        return text.Length > 0 ? char.ToLowerInvariant(text[0]) + text[1..].TrimEnd('.') : "I/O error";
    }

    // Catch-all paths unwrap to the base exception before showing it; the operating system's bare message
    // ("Permission denied") names neither the path nor the fix, so this sentence is the base.
    public override Exception GetBaseException() => this;
}

/// <summary>A repository too large to scan; the message names the directory and the limit.</summary>
public sealed class RepositoryTooLargeException(string message) : RepositoryAccessException(message);
