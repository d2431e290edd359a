using Ensemble.Cli;

return await EnsembleCli.RunAsync(args);
