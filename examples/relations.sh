#!/bin/sh
# Relations and configuration on the quickstart environment (run ./examples/quickstart.sh first): deploy the
# example db and web formulas, relate them, and show the web unit's config file as the database's address, its
# generated password, a new port (ensemble set) and a schema announced by db's upgrade reach it.
set -e
cd "$(dirname "$0")/.."
tools="${DOTNET_CLI_HOME:-$HOME}/.dotnet/tools"
case ":$PATH:" in *":$tools:"*) ;; *) PATH="$tools:$PATH"; export PATH ;; esac
env=quickstart
# The web unit's config file, in its data directory on the environment's one machine.
web_conf="${ENSEMBLE_HOME:-$HOME/.ensemble}/environments/$env/data/machines/machine-0/units/web-0/data/web.conf"
conf() {
  echo "--- web/0's web.conf:"
  if [ -f "$web_conf" ]; then cat "$web_conf"; else echo "(none)"; fi
}
wait_for() {
  i=0
  until eval "$1"; do i=$((i+1)); [ $i -lt 300 ] || { echo "gave up waiting for: $1" >&2; exit 1; }; sleep 0.1; done
}
ensemble destroy-service -e $env web >/dev/null 2>&1 || true
ensemble destroy-service -e $env db >/dev/null 2>&1 || true
ensemble deploy -e $env --repository examples/formulas --wait db
ensemble deploy -e $env --repository examples/formulas --wait web
ensemble add-relation -e $env web db
wait_for "grep -q database_password= '$web_conf' 2>/dev/null"
conf
ensemble set -e $env db port=6543
wait_for "grep -q database_port=6543 '$web_conf'"
conf
ensemble upgrade-formula -e $env --repository examples/upgrades --wait db
wait_for "grep -q database_schema=2 '$web_conf'"
conf
ensemble status -e $env
ensemble remove-relation -e $env web db
wait_for "[ ! -f '$web_conf' ]"
conf
