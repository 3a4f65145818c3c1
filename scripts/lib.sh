# Shared by the scripts in this folder; sourced, not run.
# shellcheck shell=bash

PRIME_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRIME_BUILD=${PRIME_BUILD:-$PRIME_ROOT/build}

die() { echo "${0##*/}: $*" >&2; exit 1; }
say() { echo "${0##*/}: $*" >&2; }

# The PostgreSQL server binaries (initdb, pg_ctl), which Debian keeps off PATH.
pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

# PostgreSQL refuses to run as root: as root, run the server tools as the
# postgres user (the Debian package creates it).
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A loopback TCP port nobody listens on now (the caller still retries if
# another process takes it first), below Linux's ephemeral range (32768 up):
# a port there may be the local end of some outgoing connection, which no
# listen check sees and which makes a bind fail (a worker's --metrics-port
# then exits 1 at its start).
free_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# wait_for_file FILE SECONDS [PID]: until FILE is non-empty; fails after
# SECONDS, or at once if PID (the process that should write it) has died.
wait_for_file() {
  local file=$1 tries=$(( $2 * 20 )) pid=${3:-}
  while [ "$tries" -gt 0 ]; do
    [ -s "$file" ] && return 0
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
    sleep 0.05
    tries=$((tries - 1))
  done
  [ -s "$file" ]
}

# pg_data_dir DIR: the data directory of the cluster pg-up made in DIR (DIR/data,
# or where that link points when the data had to live under /tmp).
pg_data_dir() {
  if [ -L "$1/data" ]; then readlink "$1/data"; else echo "$1/data"; fi
}

# Builds the project into $PRIME_BUILD if a program is missing or stale.
ensure_built() {
  if [ ! -f "$PRIME_BUILD/CMakeCache.txt" ]; then
    cmake -S "$PRIME_ROOT" -B "$PRIME_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || die "cmake failed"
  fi
  cmake --build "$PRIME_BUILD" -j "$(nproc)" >/dev/null || die "build failed (run: cmake --build $PRIME_BUILD)"
}
