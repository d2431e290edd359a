using Ensemble.Agent;

return await AgentHost.RunAsync(args);
