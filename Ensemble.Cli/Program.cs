using Ensemble.Cli;

return await DemoCommand.RunAsync(args);
