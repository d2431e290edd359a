using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ensemble.Machines;

/// <summary>
/// A machine's agent as the controller sees it: <c>started</c> (its presence node exists and its node is an Up
/// member of the cluster), <c>lost</c> (its node is a member the cluster cannot reach), or <c>down</c> (anything
/// else: never joined, left, downed, or no presence).
/// </summary>
[JsonConverter(typeof(AgentStateNameConverter))]
public enum AgentState
{
    Down,
    Started,
    Lost,
}

/// <summary>The names an agent state is written and shown by.</summary>
public static class AgentStates
{
    public static string Name(AgentState state) => state switch
    {
        AgentState.Started => "started",
        AgentState.Lost => "lost",
        _ => "down",
    };

    public static AgentState? Named(string? name) => name switch
    {
        "started" => AgentState.Started,
        "lost" => AgentState.Lost,
        "down" => AgentState.Down,
        _ => null,
    };
}

/// <summary>Writes an <see cref="AgentState"/> by its name ("started"); a name no state has is unreadable.</summary>
public sealed class AgentStateNameConverter : JsonConverter<AgentState>
{
    public override AgentState Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && AgentStates.Named(reader.GetString()) is { } state
            ? state
            : throw new JsonException($"'{(reader.TokenType == JsonTokenType.String ? reader.GetString() : reader.TokenType.ToString())}' is not an agent state");

    public override void Write(Utf8JsonWriter writer, AgentState value, JsonSerializerOptions options) =>
        writer.WriteStringValue(AgentStates.Name(value));
}
