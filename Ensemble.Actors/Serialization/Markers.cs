namespace Ensemble.Serialization;

/// <summary>Marks an event that a persistent actor journals; bound to <see cref="EnsembleSerializer"/>.</summary>
public interface IPersistedEvent;

/// <summary>Marks a message that may cross the network (CLI ⇄ controller ⇄ agents); bound to <see cref="EnsembleSerializer"/>.</summary>
public interface IWireMessage;
