#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs every test.
#  - ZooKeeper 3.8 and Java (Debian package 'zookeeper'): the tests start their own servers on free
#    loopback ports;
#  - python3-kazoo: an independent ZooKeeper client, for the interoperability tests;
#  - tmux: a real terminal of a chosen width, for the tests of what `ensemble` draws;
#  - iproute2: network namespaces, the simulated hosts of the multi-host tests (they run as root);
#  - PostgreSQL (Debian package 'postgresql'): the tests initialize and start their own servers on free ports
#    (as the OS user 'postgres' when run as root); the package's own cluster service is not used.
# Installing uses apt-get as root (directly, or through sudo). The .NET 10 SDK must be there; hooks need
# a POSIX shell, setsid and kill, which every Debian has. Arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v dotnet >/dev/null || { echo "eng/test.sh: the .NET 10 SDK is missing; install it first" >&2; exit 1; }

missing=()
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
/usr/bin/python3 -c "import kazoo" 2>/dev/null || missing+=(python3-kazoo)
command -v tmux >/dev/null || missing+=(tmux)
command -v ip >/dev/null || missing+=(iproute2)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "eng/test.sh: the tests need ${missing[*]}; run this as root to install them" >&2; exit 1
  fi
  echo "eng/test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq "${missing[@]}"
fi
# What is still missing fails the run here rather than in the middle of the tests.
test -f /usr/share/java/zookeeper.jar || { echo "eng/test.sh: ZooKeeper is not installed (/usr/share/java/zookeeper.jar missing)" >&2; exit 1; }
command -v java >/dev/null || { echo "eng/test.sh: java is missing: the ZooKeeper server cannot run" >&2; exit 1; }
command -v tmux >/dev/null || { echo "eng/test.sh: tmux is missing" >&2; exit 1; }
command -v ip >/dev/null || { echo "eng/test.sh: iproute2 is missing: the multi-host tests simulate hosts with network namespaces" >&2; exit 1; }
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || { echo "eng/test.sh: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): the PostgreSQL journal and formula storage tests start real servers" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet test ActorEnsemble.sln "$@"
