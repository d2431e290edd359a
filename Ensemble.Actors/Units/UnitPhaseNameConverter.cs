using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ensemble.Units;

/// <summary>Writes a <see cref="UnitPhase"/> by its store name ("upgrade_error"); a name no phase has is unreadable.</summary>
public sealed class UnitPhaseNameConverter : JsonConverter<UnitPhase>
{
    public override UnitPhase Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && UnitLifecycle.PhaseNamed(reader.GetString()) is { } phase
            ? phase
            : throw new JsonException($"'{(reader.TokenType == JsonTokenType.String ? reader.GetString() : reader.TokenType.ToString())}' is not a unit state");

    public override void Write(Utf8JsonWriter writer, UnitPhase value, JsonSerializerOptions options) =>
        writer.WriteStringValue(UnitLifecycle.StateName(value));
}
