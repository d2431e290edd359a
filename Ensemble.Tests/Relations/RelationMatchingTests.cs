using Ensemble.Relations;
using Xunit;

namespace Ensemble.Tests.Relations;

public sealed class RelationMatchingTests
{
    private static ServiceEndpoints Endpoints(string service, (string, string)[]? provides = null, (string, string)[]? requires = null) => new(service,
        (provides ?? []).ToDictionary(p => p.Item1, p => p.Item2), (requires ?? []).ToDictionary(r => r.Item1, r => r.Item2), new Dictionary<string, string>());

    [Fact]
    public void The_one_provides_requires_pair_with_the_same_interface_matches_whichever_side_is_named_first()
    {
        var db = Endpoints("db", provides: [("server", "mysql"), ("admin", "http")]);
        var web = Endpoints("web", requires: [("database", "mysql")]);
        var match = Assert.IsType<RelationMatching.Outcome.Matched>(RelationMatching.Match(web, new("web", null), db, new("db", null), []));
        Assert.Equal(("mysql", "db:server", "web:database"), (match.Interface, match.Provider.ToString(), match.Requirer.ToString()));
    }

    [Fact]
    public void Refusals_name_what_there_is_and_the_fix()
    {
        var db = Endpoints("db", provides: [("server", "mysql"), ("replica", "mysql")]);
        var web = Endpoints("web", requires: [("database", "mysql")]);
        var ambiguous = Assert.IsType<RelationMatching.Outcome.Refused>(RelationMatching.Match(web, new("web", null), db, new("db", null), []));
        Assert.Contains("name the endpoints, e.g. 'ensemble add-relation db:server web:database'", ambiguous.Reason, StringComparison.Ordinal);
        var none = Assert.IsType<RelationMatching.Outcome.Refused>(RelationMatching.Match(web, new("web", null), db, new("db", "nosuch"), []));
        Assert.Contains("web requires database (mysql)", none.Reason, StringComparison.Ordinal);
        Assert.Contains("cannot be related to itself", Assert.IsType<RelationMatching.Outcome.Refused>(RelationMatching.Match(web, new("web", null), web, new("web", null), [])).Reason, StringComparison.Ordinal);
        Assert.Null(EndpointSpec.Parse("Web:db"));
        Assert.Null(EndpointSpec.Parse("web:d b"));
        Assert.Equal(new EndpointSpec("web", "db"), EndpointSpec.Parse("web:db"));
    }

    [Fact]
    public void Remove_relation_finds_the_one_live_relation_between_the_endpoints()
    {
        var relations = new[]
        {
            new RelationRecord(0, "mysql", [new("db", "server", RelationRole.Provider), new("web", "database", RelationRole.Requirer)]),
            new RelationRecord(1, "mysql", [new("db", "replica", RelationRole.Provider), new("web", "database", RelationRole.Requirer)]),
            new RelationRecord(2, "mysql", [new("db", "server", RelationRole.Provider), new("blog", "database", RelationRole.Requirer)], Dying: true),
        };
        Assert.Contains("related 2 times", RelationMatching.Find(new("web", null), new("db", null), relations).Refusal, StringComparison.Ordinal);
        Assert.Equal(1, RelationMatching.Find(new("db", "replica"), new("web", null), relations).Relation!.Id);
        Assert.Contains("no relation between blog and db", RelationMatching.Find(new("blog", null), new("db", null), relations).Refusal, StringComparison.Ordinal);
    }
}
