// The cluster node host (controller and agent roles over Akka.Cluster) is the next piece of work;
// until then the in-process environment behind `ensemble demo` hosts both roles.
Console.Error.WriteLine("Ensemble.Agent: the cluster node host is not built yet; use 'dotnet run --project Ensemble.Cli -- demo' for a local environment.");
return 2;
