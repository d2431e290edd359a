using Ensemble.Formulas;
using Ensemble.Services;
using Xunit;
using static Ensemble.Services.ServiceEvents;
using static Ensemble.Services.ServiceRequests;
using static Ensemble.Services.ServiceReplies;

namespace Ensemble.Tests.Services;

/// <summary>What a coordinator refuses before it changes anything: ServiceLogic.Check, without an actor system.</summary>
public sealed class ServiceChecksTests
{
    private static readonly FormulaRef Rev1 = new(new FormulaId("wordpress", 1), new string('a', 64));
    private static readonly FormulaRef Rev2 = new(new FormulaId("wordpress", 2), new string('b', 64));
    private static readonly RequestLimits Limits = RequestLimits.Default;

    private static ServiceState Deployed(int units, bool upgrading = false)
    {
        var state = ServiceLogic.Apply(ServiceState.Empty("wordpress"), new ServiceEvents.ServiceCreated(Rev1, "/repo"));
        for (var n = 0; n < units; n++) state = ServiceLogic.Apply(state, new UnitPlaced($"wordpress/{n}", "m0"));
        if (upgrading)
        {
            state = ServiceLogic.Apply(state, new UpgradeBegan("run-1", Rev1, Rev2, "/repo", ["wordpress/0", "wordpress/1"], 1));
            state = ServiceLogic.Apply(state, new UnitUpgradeLaunched("run-1", "wordpress/0"));
        }
        return state;
    }

    private static CommandRejected Refused(ServiceState state, IServiceCommand command, RejectionKind kind, string fragment)
    {
        var rejected = ServiceLogic.Check(state, command, Limits);
        Assert.NotNull(rejected);
        Assert.Equal(kind, rejected.Kind);
        Assert.Contains(fragment, rejected.Reason);
        return rejected;
    }

    [Fact]
    public void A_deploy_within_the_limits_goes_ahead() =>
        Assert.Null(ServiceLogic.Check(ServiceState.Empty("wordpress"), new PrepareDeploy("wordpress", "/repo", 1000), Limits));

    [Theory]
    [InlineData(0, "at least 1")]
    [InlineData(-5, "at least 1")]
    [InlineData(1001, "over the limit of 1000 units per request")]
    [InlineData(1_000_000, "over the limit of 1000 units per request")]
    [InlineData(int.MaxValue, "over the limit of 1000 units per request")]
    public void A_deploy_asking_for_too_few_or_too_many_units_is_refused(int units, string fragment) =>
        Refused(ServiceState.Empty("wordpress"), new PrepareDeploy("wordpress", "/repo", units), RejectionKind.InvalidInput, fragment);

    [Fact]
    public void A_deploy_naming_an_overlong_repository_path_is_refused() =>
        Refused(ServiceState.Empty("wordpress"), new PrepareDeploy("wordpress", "/" + new string('r', 5000), 1),
            RejectionKind.InvalidInput, "over the limit of 4096");

    [Fact]
    public void Deploying_a_service_twice_is_a_conflict() =>
        Refused(Deployed(1), new PrepareDeploy("wordpress", "/repo", 1), RejectionKind.Conflict, "already deployed");

    [Fact]
    public void Adding_units_past_the_per_service_limit_is_refused_and_says_how_many_fit()
    {
        var state = Deployed(4_500);
        Assert.Null(ServiceLogic.Check(state, new AddUnits("wordpress", 500), Limits));
        Refused(state, new AddUnits("wordpress", 501), RejectionKind.InvalidInput, "over the limit of 5000 units per service (4500 exist); ask for at most 500");
    }

    [Fact]
    public void Adding_units_to_a_service_not_deployed_is_not_found() =>
        Refused(ServiceState.Empty("wordpress"), new AddUnits("wordpress", 1), RejectionKind.NotFound, "not deployed");

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(5001)]
    [InlineData(int.MaxValue)]
    public void Max_parallel_outside_one_to_the_units_per_service_limit_is_refused(int maxParallel) =>
        Refused(Deployed(2), new PrepareUpgrade("wordpress", MaxParallel: maxParallel), RejectionKind.InvalidInput, "--max-parallel must be between 1 and 5000");

    [Theory]
    [InlineData(-1)]
    [InlineData(1_000_000_001)]
    [InlineData(int.MaxValue)]
    public void A_revision_outside_the_limit_is_refused(int revision) =>
        Refused(Deployed(2), new PrepareUpgrade("wordpress", Revision: revision), RejectionKind.InvalidInput, "--revision must be between 0 and 1000000000");

    [Fact]
    public void Units_named_twice_unknown_or_none_are_refused()
    {
        var state = Deployed(3);
        Refused(state, new PrepareUpgrade("wordpress", Units: ["wordpress/1", "wordpress/1"]), RejectionKind.InvalidInput, "names wordpress/1 more than once");
        Refused(state, new PrepareUpgrade("wordpress", Units: ["wordpress/7"]), RejectionKind.NotFound, "wordpress/7 is not a unit of 'wordpress'");
        Refused(state, new PrepareUpgrade("wordpress", Units: []), RejectionKind.InvalidInput, "names no unit");
        Assert.Null(ServiceLogic.Check(state, new PrepareUpgrade("wordpress", Units: ["wordpress/2", "wordpress/0"]), Limits));
    }

    [Fact]
    public void A_second_upgrade_while_one_runs_is_a_conflict_that_says_how_far_the_first_got() =>
        Refused(Deployed(3, upgrading: true), new PrepareUpgrade("wordpress"), RejectionKind.Conflict, "already running (0 of 2 units done)");

    [Fact]
    public void A_deploy_and_an_upgrade_pass_the_same_rules_as_their_preparation()
    {
        Assert.Null(ServiceLogic.Check(ServiceState.Empty("wordpress"), new DeployService("wordpress", Rev1, "/repo", 3), Limits));
        Refused(ServiceState.Empty("wordpress"), new DeployService("wordpress", Rev1, "/repo", 0), RejectionKind.InvalidInput, "at least 1");
        Refused(Deployed(1), new DeployService("wordpress", Rev1, "/repo", 1), RejectionKind.Conflict, "already deployed");
        Refused(Deployed(2), new UpgradeFormula("wordpress", Rev1, Rev2, "/repo", 2, MaxParallel: 0), RejectionKind.InvalidInput, "--max-parallel");
        Refused(Deployed(3, upgrading: true), new UpgradeFormula("wordpress", Rev1, Rev2, "/repo", 2), RejectionKind.Conflict, "already running");
    }

    [Fact]
    public void A_request_must_name_a_bundle_by_a_sha256_and_a_revision_within_the_limit()
    {
        Refused(ServiceState.Empty("wordpress"), new DeployService("wordpress", Rev1 with { Sha256 = "../../etc/passwd" }, "/repo", 1),
            RejectionKind.InvalidInput, "is not a sha256");
        Refused(ServiceState.Empty("wordpress"), new DeployService("wordpress", new FormulaRef(new FormulaId("wordpress", 1_000_000_001), Rev1.Sha256), "/repo", 1),
            RejectionKind.InvalidFormula, "over the limit of 1000000000");
    }

    [Fact]
    public void An_upgrade_prepared_against_a_formula_the_service_no_longer_runs_is_a_conflict() =>
        Refused(Deployed(1), new UpgradeFormula("wordpress", Rev2, new FormulaRef(new FormulaId("wordpress", 3), new string('c', 64)), "/repo", 3),
            RejectionKind.Conflict, "now runs local:wordpress-1");

    [Fact]
    public void An_upgrade_keeps_the_formula_of_the_service() =>
        Refused(Deployed(1), new UpgradeFormula("wordpress", Rev1, new FormulaRef(new FormulaId("mysql", 2), new string('c', 64)), "/repo", 2),
            RejectionKind.InvalidInput, "an upgrade keeps its formula");

    [Fact]
    public void A_unit_being_upgraded_cannot_be_removed_but_a_queued_one_can()
    {
        var state = Deployed(3, upgrading: true);
        Refused(state, new DestroyUnit("wordpress", "wordpress/0"), RejectionKind.Conflict, "is being upgraded");
        Assert.Null(ServiceLogic.Check(state, new DestroyUnit("wordpress", "wordpress/1"), Limits));
        Refused(state, new DestroyUnit("wordpress", "wordpress/9"), RejectionKind.NotFound, "does not exist");
    }

    [Fact]
    public void A_service_cannot_be_destroyed_during_an_upgrade() =>
        Refused(Deployed(3, upgrading: true), new DestroyService("wordpress"), RejectionKind.Conflict, "wait for it to finish");

    [Fact]
    public void Resolving_an_unknown_unit_is_not_found() =>
        Refused(Deployed(1), new ResolveUnit("wordpress", "wordpress/4", Retry: true), RejectionKind.NotFound, "does not exist");

    [Fact]
    public void Placement_names_new_units_after_the_highest_ever_used_and_spreads_them()
    {
        var state = ServiceLogic.Apply(Deployed(3), new ServiceEvents.UnitDeleted("wordpress/2"));
        var placed = ServiceLogic.PlanPlacement(state, 4, ["m0", "m1"]);
        Assert.Equal(["wordpress/3", "wordpress/4", "wordpress/5", "wordpress/6"], placed.Select(p => p.Unit));
        // m0 holds wordpress/0 and /1 already, so m1 gets the first two.
        Assert.Equal(["m1", "m1", "m0", "m1"], placed.Select(p => p.Machine));
    }
}
