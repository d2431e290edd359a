using System.CommandLine;
using Ensemble.Relations;
using static Ensemble.Cli.Commands.CommandSupport;

namespace Ensemble.Cli.Commands;

/// <summary>add-relation and remove-relation: compose services through their formulas' relation endpoints.</summary>
public static class RelationCommands
{
    public static Command AddRelation()
    {
        var a = new Argument<string>("a") { Description = "One side: <service> or <service>:<relation>, e.g. wordpress or wordpress:db.", HelpName = "service[:relation]" };
        var b = new Argument<string>("b") { Description = "The other side.", HelpName = "service[:relation]" };
        var command = new Command("add-relation",
            "Relate two services: a 'provides' endpoint of one with a 'requires' endpoint of the other that has the same interface. Name the relations when several pairs fit.")
        { a, b };
        command.SetAction(parsed => WithClientAsync(parsed, async client =>
        {
            var reply = await client.AskAsync(new RelationRequests.AddRelation(parsed.GetValue(a)!, parsed.GetValue(b)!), TimeSpan.FromSeconds(30));
            if (reply is not RelationReplies.RelationAdded added) throw ControllerClient.Rejected(reply);
            Console.WriteLine($"added relation {added.Id}: {added.Provider} {added.Requirer} ({added.Interface})");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command RemoveRelation()
    {
        var a = new Argument<string>("a") { Description = "One side: <service> or <service>:<relation>.", HelpName = "service[:relation]" };
        var b = new Argument<string>("b") { Description = "The other side.", HelpName = "service[:relation]" };
        var command = new Command("remove-relation",
            "End the relation between two services: each of their units runs <relation>-relation-departed for every remote unit, then <relation>-relation-broken.")
        { a, b };
        command.SetAction(parsed => WithClientAsync(parsed, async client =>
        {
            var reply = await client.AskAsync(new RelationRequests.RemoveRelation(parsed.GetValue(a)!, parsed.GetValue(b)!), TimeSpan.FromSeconds(30));
            if (reply is not RelationReplies.RelationRemoved removed) throw ControllerClient.Rejected(reply);
            Console.WriteLine($"removing relation {removed.Id}: {removed.Relation}; its units leave it (departed, broken), then it is gone");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
