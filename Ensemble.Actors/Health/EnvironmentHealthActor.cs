using Akka.Actor;
using Akka.Cluster;
using static Ensemble.Health.HealthReplies;

namespace Ensemble.Health;

/// <summary>
/// The environment's health, on every controller node at /user/environment-health (reached by `ensemble health` through
/// the receptionist): asks each cluster member's <see cref="HealthActor"/> with a deadline, all at once; a member that
/// does not answer in time is reported unhealthy with its member status, never left out.
/// </summary>
public sealed class EnvironmentHealthActor : ReceiveActor
{
    public const string ActorName = "environment-health";
    public const string Path = "/user/" + ActorName;

    /// <summary>Below the CLI's own wait, so a silent member is reported rather than the whole answer lost.</summary>
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromSeconds(5);

    public EnvironmentHealthActor(string environment)
    {
        Receive<HealthRequests.GetEnvironmentHealth>(m =>
        {
            var deadline = m.DeadlineSeconds is > 0 and <= 60 ? TimeSpan.FromSeconds(m.DeadlineSeconds.Value) : DefaultDeadline;
            var members = Cluster.Get(Context.System).State.Members.Where(member => member.Status != MemberStatus.Removed).ToList();
            var system = Context.System;
            SurveyAsync(system, environment, members, deadline).PipeTo(Sender);
        });
    }

    public static Props Props(string environment) => Akka.Actor.Props.Create(() => new EnvironmentHealthActor(environment));

    private static async Task<EnvironmentHealth> SurveyAsync(ActorSystem system, string environment, IReadOnlyList<Member> members, TimeSpan deadline)
    {
        var answers = await Task.WhenAll(members.Select(async member =>
        {
            try
            {
                return await system.ActorSelection(new RootActorPath(member.Address) / "user" / HealthActor.ActorName)
                    .Ask<NodeHealth>(new HealthRequests.GetNodeHealth(), deadline);
            }
            catch (Exception)
            {
                return HealthJudge.NotAnswering($"{member.Address.Host}:{member.Address.Port}",
                    member.Roles.OrderBy(r => r, StringComparer.Ordinal).ToList(), member.Status.ToString(), deadline, DateTimeOffset.UtcNow);
            }
        }));
        return new EnvironmentHealth(environment, answers.OrderBy(n => n.Address, StringComparer.Ordinal).ToList());
    }
}
