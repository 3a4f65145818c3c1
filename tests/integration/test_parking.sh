#!/usr/bin/env bash
# Parking (issue 12 item 9), prime-materializer against the dev broker and an
# ephemeral PostgreSQL: a parked event dead-lettered after its wait carries
# the Kafka headers it was published with.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

published=0 # records published so far, on every topic
publish() { # FILE
  "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
  published=$((published + $(grep -c . "$1")))
}
drain() { # ARGS...: run the materializer until it has consumed everything published, then stop it
  "$PRIME_MATERIALIZER" --group park --linger-ms 200 -X session.timeout.ms=6000 "$@" >>"$tmp/mat.log" 2>&1 &
  local pid=$! last=-1
  for _ in $(seq 600); do
    last=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'park'")
    [ "$last" -ge "$published" ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid"
}
count_dead() { dead_letters | grep -cE "$1"; }
n=0
ev() { # TYPE OWNER SECOND JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:%02dZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" $(($3 / 60 % 60)) $(($3 % 60)) "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[],\"email_verified\":false"; }
recall() { ev recall.set "$1" "$2" "\"category\":\"plugin\",\"recall_key\":\"k$3\",\"data\":{\"v\":$3}"; }

# A parked event keeps its headers: published with a trace header (kcat
# -H), parked for an owner who never registers, dead-lettered after
# --park-max-seconds with the trace header and the reason.
u7=77777777-7777-4777-8777-777777777777
recall "$u7" 20 7 | "$PRIME_CODEC" encode >"$tmp/traced.bin" || exit 1
kcat -b "$PRIME_BROKERS" -P -t prime.recall -k "$u7" -H trace=t-0042 -H "prime.event_type=recall.set" "$tmp/traced.bin" 2>/dev/null \
  || { bad "kcat could not publish"; finish; exit 1; }
published=$((published + 1))
drain
check "the traced event is parked" "1" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"
# Expired by the idle housekeeping of a materializer left running until the
# dead letter is there.
"$PRIME_MATERIALIZER" --group park --park-max-seconds 1 -X session.timeout.ms=6000 >>"$tmp/mat.log" 2>&1 &
pid=$!
for _ in $(seq 150); do
  [ "$(count_dead "prime_users:$u7 was not written")" -ge 1 ] && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"
dead_lettered "the expired event's dead letter carries its original headers" \
  "trace=t-0042.*prime.error.message=unresolved: prime_users:$u7 was not written within 1 seconds"
check "and is no longer parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"

if [ "$failed" != 0 ]; then
  echo "--- the materializer's warnings and errors:"
  grep -E 'level=(warn|error)' "$tmp/mat.log" | tail -20
fi
finish
