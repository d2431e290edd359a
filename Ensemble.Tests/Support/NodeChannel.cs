using Akka.Actor;
using Ensemble.Formulas.Transfer;
using Ensemble.Hosting;
using Ensemble.Services;

namespace Ensemble.Tests.Support;

/// <summary>The operator's line to a node started in the test's process: its service manager and upload receiver by path.</summary>
public sealed class NodeChannel(ActorSystem system) : IControllerChannel
{
    public Task<object> AskServicesAsync(object request, TimeSpan timeout) =>
        system.ActorSelection(EnsembleNode.ServicesPath).Ask<object>(request, timeout);

    public Task<object> AskUploadsAsync(object request, TimeSpan timeout) =>
        system.ActorSelection(BundleTransfer.UploadsPath).Ask<object>(request, timeout);

    public void TellUploads(object message) => system.ActorSelection(BundleTransfer.UploadsPath).Tell(message);
}
