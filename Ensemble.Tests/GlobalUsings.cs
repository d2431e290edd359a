global using Ensemble.TestKit;
global using Ensemble.TestKit.Conformance;
global using Ensemble.Units;
