using Akka.Actor;
using Akka.Event;
using Ensemble.Services;
using Ensemble.Topology;
using static Ensemble.Relations.RelationRequests;
using static Ensemble.Relations.RelationReplies;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Relations;

/// <summary>
/// Adds and removes relations on the controller, one request at a time (two add-relations of the same pair cannot
/// both pass the "already related" check). The decisions are <see cref="RelationMatching"/>'s; this reads the
/// services' endpoints from their formula records and writes the relation to the store, where the unit agents
/// watching it take over.
/// </summary>
public sealed class RelationManager : ReceiveActor
{
    private readonly TopologyStore _topology;
    private readonly RelationStore _relations;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RelationManager(TopologyStore topology)
    {
        _topology = topology;
        _relations = new RelationStore(topology);
        ReceiveAsync<AddRelation>(m => Answer(m.A, () => AddAsync(m)));
        ReceiveAsync<RemoveRelation>(m => Answer(m.A, () => RemoveAsync(m)));
    }

    public static Props Props(TopologyStore topology) => Akka.Actor.Props.Create(typeof(RelationManager), topology);

    private async Task Answer(string subject, Func<Task<object>> work)
    {
        var replyTo = Sender;
        try
        {
            replyTo.Tell(await work());
        }
        catch (Exception ex) when (ex is Coordination.StoreException or TimeoutException || Coordination.StoreTrouble.IsTransient(ex))
        {
            replyTo.Tell(new CommandRejected(subject, RejectionKind.Unavailable,
                $"the coordination store did not answer ({ex.GetBaseException().Message}); try again when it is back"));
        }
    }

    private async Task<object> AddAsync(AddRelation m)
    {
        if (Parse(m.A, out var a) is { } badA) return badA;
        if (Parse(m.B, out var b) is { } badB) return badB;
        var (aEndpoints, aRefusal) = await EndpointsAsync(a!.Service);
        if (aRefusal is not null) return aRefusal;
        var (bEndpoints, bRefusal) = await EndpointsAsync(b!.Service);
        if (bRefusal is not null) return bRefusal;
        switch (RelationMatching.Match(aEndpoints!, a, bEndpoints!, b, await _relations.ListAsync()))
        {
            case RelationMatching.Outcome.Refused refused:
                return new CommandRejected(m.A, RejectionKind.InvalidInput, refused.Reason);
            case RelationMatching.Outcome.Matched match:
                var relation = await _relations.CreateAsync(match.Interface, [match.Provider, match.Requirer]);
                _log.Info("relation {0} added: {1}", relation.Id, relation);
                return new RelationAdded(relation.Id, match.Interface, match.Provider.ToString(), match.Requirer.ToString());
            default:
                throw new InvalidOperationException("unknown matching outcome");
        }
    }

    private async Task<object> RemoveAsync(RemoveRelation m)
    {
        if (Parse(m.A, out var a) is { } badA) return badA;
        if (Parse(m.B, out var b) is { } badB) return badB;
        var (relation, refusal) = RelationMatching.Find(a!, b!, await _relations.ListAsync());
        if (refusal is not null) return new CommandRejected(m.A, RejectionKind.NotFound, refusal);
        await _relations.MarkDyingAsync(relation!);
        _log.Info("relation {0} removed: {1}", relation!.Id, relation);
        return new RelationRemoved(relation.Id, relation.ToString());
    }

    private static CommandRejected? Parse(string text, out EndpointSpec? spec)
    {
        spec = EndpointSpec.Parse(text);
        return spec is null
            ? new CommandRejected(text, RejectionKind.InvalidInput,
                $"'{text}' is not an endpoint; write <service> or <service>:<relation>, e.g. wordpress:db")
            : null;
    }

    /// <summary>The endpoints of the service's current formula, or why the service cannot be related.</summary>
    private async Task<(ServiceEndpoints?, CommandRejected?)> EndpointsAsync(string service)
    {
        if (await _topology.GetServiceAsync(service) is not { } record)
            return (null, new CommandRejected(service, RejectionKind.NotFound, $"service '{service}' is not deployed; check the name with 'ensemble status'"));
        if (record.Dying)
            return (null, new CommandRejected(service, RejectionKind.Conflict, $"service '{service}' is being destroyed; it cannot be related"));
        var formula = await _topology.GetFormulaAsync(record.Formula);
        return (ForFormula(service, formula), null);
    }

    public static ServiceEndpoints ForFormula(string service, FormulaRecord? formula) => new(service,
        formula?.Provides ?? new Dictionary<string, string>(), formula?.Requires ?? new Dictionary<string, string>(),
        formula?.Peers ?? new Dictionary<string, string>());
}
