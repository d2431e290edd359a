namespace Ensemble.Serialization;

/// <summary>Marks an event that a persistent actor journals; bound to <see cref="EnsembleSerializer"/>.</summary>
public interface IPersistedEvent;
