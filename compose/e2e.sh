#!/usr/bin/env bash
# compose/e2e.sh [--ha] [--scale N]: the compose deployment end to end. Brings
# it up (postgres, Kafka, the migrate and topic-init jobs, the workers with N
# materializers, default 2), runs the studio day (tests/e2e/studio_day.sh)
# from this machine against it, checks the workers' logs and health, and
# takes it all down again, volumes included.
# Exit status: 0 passed, 1 failed, 77 no Docker engine here (nothing was run:
# never read as a pass).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../scripts/lib.sh"

env_file=$here/.env scale=2
while [ $# -gt 0 ]; do
  case $1 in
    --ha) env_file=$here/ha.env ;;
    --scale) scale=${2:?--scale needs a count}; shift ;;
    *) die "unknown option $1 (usage: e2e.sh [--ha] [--scale N])" ;;
  esac
  shift
done

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "compose/e2e.sh: no Docker engine here (docker info fails): the compose deployment was NOT tested" >&2
  exit 77
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
command -v "${compose[0]}" >/dev/null || die "neither 'docker compose' nor docker-compose is installed"

# The scenario runs here: the programs it calls (prime-publish, prime-audit
# verify, ...) from this checkout's build, the audio files in a directory the
# containers mount as their storage root.
ensure_built
storage=$(mktemp -d "${TMPDIR:-/tmp}/prime-compose-storage.XXXXXX")
chmod 755 "$storage"
export PRIME_STORAGE_DIR=$storage
# The profile named too, not only through COMPOSE_PROFILES in the env file,
# which older docker-compose releases may not read from there.
compose+=(--project-directory "$here" -f "$here/docker-compose.yml" --env-file "$env_file"
  --profile "$(sed -n 's/^COMPOSE_PROFILES=//p' "$env_file")" -p prime-e2e)
down() { "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1; rm -rf "$storage"; }
trap down EXIT

say "building and starting the deployment ($(sed -n 's/^COMPOSE_PROFILES=//p' "$env_file"), $scale materializers)"
"${compose[@]}" up -d --build --scale prime-materializer="$scale" || die "docker compose up failed"
# The jobs first: the scenario's own prime-migrate must not race the job's.
for job in prime-migrate topic-init; do
  for _ in $(seq 1 300); do
    id=$("${compose[@]}" ps -a -q "$job" 2>/dev/null) # -a: it has exited
    state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id" 2>/dev/null)
    [ "$state" = "exited 0" ] && break
    case $state in exited*) "${compose[@]}" logs "$job"; die "$job failed: $state" ;; esac
    sleep 1
  done
  [ "$state" = "exited 0" ] || die "$job did not finish in 300 s"
done

export PATH="$PRIME_BUILD/producers:$PRIME_BUILD/sink:$PRIME_BUILD/workers:$PRIME_BUILD/schemas:$PATH"
export PRIME_BROKERS=127.0.0.1:19092 PGHOST=127.0.0.1 PGPORT=15432 PGUSER=prime PGDATABASE=prime
export PGPASSWORD=${PRIME_PG_PASSWORD:-prime}
export PRIME_DB="host=127.0.0.1 port=15432 user=prime dbname=prime"
export PRIME_STORAGE_ROOT=$storage PRIME_E2E_WORKERS=external
"$here/../tests/e2e/studio_day.sh"
rc=$?

# The workers: healthy, and no error in their logs.
for svc in prime-materializer prime-snapshot-writer prime-audit-writer prime-analyzer; do
  for id in $("${compose[@]}" ps -q "$svc"); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$id")
    [ "$health" = healthy ] && echo "ok   $svc $id healthy" || { echo "FAIL $svc $id: $health"; rc=1; }
  done
done
if "${compose[@]}" logs --no-color prime-materializer prime-snapshot-writer prime-audit-writer prime-analyzer |
    grep -E 'level=(error|fatal)'; then
  echo "FAIL the workers logged errors"
  rc=1
fi
exit "$rc"
