using System.Security.Cryptography;
using System.Text;

namespace Ensemble.Machines;

/// <summary>
/// Join tokens: 256 random bits, shown once to the operator; the store keeps only their SHA-256. A token this
/// long cannot be guessed, so a plain hash (no slow key derivation) is enough, and comparing hashes in constant
/// time gives away nothing about how close a wrong token came.
/// </summary>
public static class MachineTokens
{
    /// <summary>Longer than any token we issue: a request carrying more is refused before hashing.</summary>
    public const int MaxLength = 256;

    /// <summary>A fresh token and the hash to store for it.</summary>
    public static (string Token, string Hash) Issue()
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        return (token, Hash(token));
    }

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>Whether <paramref name="token"/> is the one whose hash is <paramref name="hash"/>, compared in constant time.</summary>
    public static bool Matches(string? token, string? hash)
    {
        if (string.IsNullOrEmpty(token) || token.Length > MaxLength || hash is not { Length: 64 }) return false;
        byte[] expected;
        try { expected = Convert.FromHexString(hash); }
        catch (FormatException) { return false; }
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(token)), expected);
    }
}
