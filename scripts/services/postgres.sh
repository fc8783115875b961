#!/usr/bin/env bash
# A PostgreSQL of our own from Debian's packages (`postgresql`, 15 or later), for the tests
# and for development; no system service, no Docker.
#   postgres.sh init DIR               an empty cluster in DIR/data: superuser `fleet`, trusted on
#                                      127.0.0.1 and on its socket in DIR (idempotent)
#   postgres.sh run DIR PORT [ADDR]    run it in the foreground on 127.0.0.1:PORT, or ADDR:PORT (the
#                                      tests do; a test host's address: its pg_hba.conf is the test's)
#   postgres.sh start [DIR] [PORT]     init if needed, start in the background (default var/postgres,
#                                      5432), create the database `fleet` and print the store URL
#   postgres.sh stop [DIR]             a fast shutdown
# PostgreSQL refuses to run as root: run as root, the cluster belongs to `nobody` and runs as it.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$BIN/postgres" ] || { echo "postgres.sh: no PostgreSQL server; install the Debian package postgresql" >&2; exit 1; }

# Runs a command as the cluster's owner: ourselves, or nobody when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

init() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] && return 0
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir"
  # Trust is for a cluster that listens on loopback and a socket in a private folder only.
  as_owner "$BIN/initdb" -D "$dir/data" -U fleet -A trust -E UTF8 --locale=C --no-instructions >"$dir/initdb.log" ||
    { cat "$dir/initdb.log" >&2; exit 1; }
}

options() {
  echo "-p $2 -k $1 -c listen_addresses=${3:-127.0.0.1}"
}

case "${1:-}" in
  init) init "${2:?usage: postgres.sh init DIR}" ;;
  run)
    dir=${2:?usage: postgres.sh run DIR PORT}
    port=${3:?usage: postgres.sh run DIR PORT [ADDR]}
    address=${4:-127.0.0.1}
    init "$dir"
    # shellcheck disable=SC2046 # the options are words by design
    if [ "$(id -u)" -eq 0 ]; then
      exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$BIN/postgres" -D "$dir/data" $(options "$dir" "$port" "$address")
    else
      exec "$BIN/postgres" -D "$dir/data" $(options "$dir" "$port" "$address")
    fi
    ;;
  start)
    dir=$(realpath -m "${2:-var/postgres}")
    port=${3:-5432}
    init "$dir"
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$(options "$dir" "$port")" -w start >/dev/null
    as_owner "$BIN/psql" -h "$dir" -p "$port" -U fleet -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'fleet'" | grep -q 1 ||
      as_owner "$BIN/createdb" -h "$dir" -p "$port" -U fleet fleet
    echo "postgres.sh: running in $dir (log: $dir/postgres.log)"
    echo "store: postgres://fleet@127.0.0.1:$port/fleet"
    ;;
  stop)
    dir=$(realpath -m "${2:-var/postgres}")
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop
    ;;
  *)
    echo "usage: $0 init DIR | run DIR PORT [ADDR] | start [DIR] [PORT] | stop [DIR]" >&2
    exit 2
    ;;
esac
