#!/bin/sh
# The main job on the embedded defaults: bootstrap a local environment, deploy the example formula
# 'hello' with 3 units, upgrade it to its next revision showing each unit's progress, print the status.
# The environment keeps running; stop it with:
#   dotnet Ensemble.Cli/bin/Release/net10.0/ensemble.dll destroy-environment quickstart
set -e
cd "$(dirname "$0")/.."

dotnet build ActorEnsemble.sln -c Release -nologo -v quiet
ensemble() { dotnet Ensemble.Cli/bin/Release/net10.0/ensemble.dll "$@"; }

# Start from a clean environment when the script runs again.
ensemble destroy-environment quickstart >/dev/null 2>&1 || true
ensemble bootstrap --local --name quickstart
ensemble deploy -e quickstart --repository examples/formulas -n 3 --wait hello
ensemble upgrade-formula -e quickstart --repository examples/upgrades --wait hello
ensemble status -e quickstart
echo
echo "The environment 'quickstart' keeps running. Try 'ensemble log hello/0', then stop it with:"
echo "  dotnet Ensemble.Cli/bin/Release/net10.0/ensemble.dll destroy-environment quickstart"
