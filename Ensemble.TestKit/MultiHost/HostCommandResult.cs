namespace Ensemble.TestKit.MultiHost;

/// <summary>What a command that ran to completion left behind: its exit code and everything it printed.</summary>
public sealed record HostCommandResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}; stdout: {Stdout.Trim()}; stderr: {Stderr.Trim()}";
}
