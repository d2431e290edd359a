using System.Runtime.CompilerServices;

// The fixture's own tests simulate a killed test process and machines without iproute2 through internal seams.
[assembly: InternalsVisibleTo("Ensemble.Tests")]
