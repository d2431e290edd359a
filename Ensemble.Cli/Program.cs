using Ensemble.Cli;

return await Cli.RunAsync(args);
