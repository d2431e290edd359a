#!/bin/sh
# The main job on the embedded defaults: install the `ensemble` command (a .NET tool packed from this
# checkout), bootstrap a local environment, deploy the example formula 'hello' with 3 units, upgrade it to
# its next revision showing each unit's progress, print the status. The environment keeps running; stop it
# with `ensemble destroy-environment quickstart`.
set -e
cd "$(dirname "$0")/.."

# Each run packs the checkout as it is now under a version of its own, so the update below always takes
# these bits; the package source is this directory only.
version="0.1.0-local.$(date -u +%Y%m%d%H%M%S)"
package=Ensemble.Cli/bin/package
rm -rf "$package"
dotnet pack Ensemble.Cli -c Release -o "$package" -nologo -v quiet -p:PackageVersion="$version"
cat > "$package/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration><packageSources><clear /><add key="ensemble" value="$PWD/$package" /></packageSources></configuration>
CONFIG
dotnet tool update --global ActorEnsemble.Cli --version "$version" --configfile "$package/nuget.config" >/dev/null
tools="${DOTNET_CLI_HOME:-$HOME}/.dotnet/tools"
case ":$PATH:" in *":$tools:"*) ;; *) PATH="$tools:$PATH"; export PATH ;; esac
echo "installed $(ensemble --version | cut -d+ -f1) as $tools/ensemble"

# Start from a clean environment when the script runs again.
ensemble destroy-environment quickstart >/dev/null 2>&1 || true
ensemble bootstrap --local --name quickstart
ensemble deploy -e quickstart --repository examples/formulas -n 3 --wait hello
ensemble upgrade-formula -e quickstart --repository examples/upgrades --wait hello
ensemble status -e quickstart
echo
echo "The environment 'quickstart' keeps running. Put $tools on your PATH"
echo "(export PATH=\"\$PATH:$tools\"), try 'ensemble log hello/0', then stop it with:"
echo "  ensemble destroy-environment quickstart"
