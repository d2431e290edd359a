using Ensemble.Serialization;

namespace Ensemble.Relations;

/// <summary>Operator requests about relations, answered by the controller's relation manager.</summary>
public static class RelationRequests
{
    /// <summary>
    /// Relates two services: <c>service</c> or <c>service:relation</c> each. Answered with
    /// <see cref="RelationReplies.RelationAdded"/> or <see cref="Services.ServiceReplies.CommandRejected"/> (nothing changed).
    /// </summary>
    public sealed record AddRelation(string A, string B) : IWireMessage;

    /// <summary>Ends the relation between the two endpoints: every unit in it runs -departed, then -broken.</summary>
    public sealed record RemoveRelation(string A, string B) : IWireMessage;
}

public static class RelationReplies
{
    /// <summary>The relation made: its id and its two endpoints (<c>service:relation</c>).</summary>
    public sealed record RelationAdded(int Id, string Interface, string Provider, string Requirer) : IWireMessage;

    /// <summary>The relation is being removed: its units leave it (departed, broken), then it is gone.</summary>
    public sealed record RelationRemoved(int Id, string Relation) : IWireMessage;
}
