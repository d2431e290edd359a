using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Cli;

/// <summary>The documented exit codes of the ensemble command (docs/cli.md).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Done, but not everywhere (a unit ended in an error state, a record could not be read), or an unexpected failure.</summary>
    public const int Failed = 1;
    public const int Usage = 2;
    /// <summary>No such service, unit, formula, revision or repository.</summary>
    public const int NotFound = 3;
    /// <summary>The formula is malformed (the message names the file and field).</summary>
    public const int InvalidFormula = 4;
    public const int NoNewerRevision = 5;
    /// <summary>Conflicts with what is going on: an upgrade already running, a service or environment that exists.</summary>
    public const int Conflict = 6;
    /// <summary>The environment is not bootstrapped, not running, not answering, or cannot do it now.</summary>
    public const int Unavailable = 7;

    public static int For(RejectionKind kind) => kind switch
    {
        RejectionKind.NotFound => NotFound,
        RejectionKind.InvalidInput => Usage,
        RejectionKind.InvalidFormula => InvalidFormula,
        RejectionKind.NoNewerRevision => NoNewerRevision,
        RejectionKind.Conflict => Conflict,
        _ => Unavailable,
    };
}

/// <summary>A user-facing failure: one sentence and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
