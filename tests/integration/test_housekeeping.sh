#!/usr/bin/env bash
# The materializer's idle housekeeping (issue 12, item 6), on the dev broker
# and an ephemeral PostgreSQL, with events of owners never registered, which
# park and expire after --park-max-seconds:
#   b. ownership: two live instances, each expires only the parked events of
#      the partitions it holds at the time (its log of assignments against
#      its log of dead letters), every event expired once;
#   a. the fence: an instance stopped (SIGSTOP) inside its housekeeping, with
#      expired parked events taken out in its open transaction, past its
#      session timeout; another instance takes its partitions over and
#      commits; resumed (SIGCONT), the zombie's housekeeping commit is
#      refused, and the parked events, the other's now, are not expired.
set -uo pipefail
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  [ -n "${locker:-}" ] && kill "$locker" 2>/dev/null
  if [ "${failed:-0}" != 0 ]; then
    echo "--- materializer logs (warnings and errors, last 30) ---"
    grep -hE 'level=(warn|error)' "$tmp"/*.log | grep -v dead-lettered | tail -30
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

n=0
ev() { # TYPE OWNER JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:00:%02dZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" $((n % 60)) "$2" "$2" "$3"
}
owner() { printf '%08d-0000-4000-8000-%012d' "$1" "$2"; } # RUN N
# Events of COUNT owners never registered, on three topics (a project, a
# preset, a collaboration each): they park, waiting for prime_users.
parked_events() { # RUN COUNT
  local i u
  for ((i = 0; i < $2; i++)); do
    u=$(owner "$1" "$i")
    ev project.created "$u" "\"project_id\":\"$(owner $(($1 + 10)) "$i")\",\"name\":\"p$i\",\"project_data\":{}"
    ev preset.created "$u" "\"preset_id\":\"$(owner $(($1 + 20)) "$i")\",\"name\":\"k$i\",\"plugin_type\":\"eq\",\"parameters\":{},\"is_public\":false,\"is_system_preset\":false,\"tags\":[]"
    ev collab.started "$u" "\"collab_session_id\":\"$(owner $(($1 + 30)) "$i")\",\"project_id\":\"$(owner $(($1 + 10)) "$i")\",\"session_name\":\"s$i\""
  done
}
users() { # RUN COUNT: registrations of owners apart from the parked ones
  local i u
  for ((i = 0; i < $2; i++)); do
    u=$(owner "$1" "$i")
    ev user.registered "$u" "\"email\":\"r$1-$i@example.com\",\"username\":\"r$1x$i\",\"display_name\":\"r\",\"preferred_genres\":[],\"email_verified\":false"
  done
}
published=0 # records on the materializer's topics so far
publish() {
  "$PRIME_PUBLISH" "$1" >"$tmp/publish.log" 2>&1 || { cat "$tmp/publish.log"; bad "publishing $1"; finish; exit 1; }
  published=$((published + $(grep -c . "$1")))
}
declare -A pid port
start() { # NAME GROUP PARK-MAX-SECONDS
  port[$1]=$(free_port)
  "$PRIME_MATERIALIZER" --group "$2" --park-max-seconds "$3" --linger-ms 50 --metrics-port "${port[$1]}" \
    -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 >"$tmp/$1.log" 2>&1 &
  pid[$1]=$!
  pids+=($!)
}
stop() { kill -TERM "${pid[$1]}"; wait "${pid[$1]}"; }
log_assigned() { has_partitions "$tmp/$1.log"; }
parked() { psql -qAtc "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = '$1'"; }
parked_is() { [ "$(parked "$1")" = "$2" ]; }
unresolved() { dead_letters | grep -c 'prime.error.message=unresolved'; }
stored() { psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = '$1'"; }
stored_over() { [ "$(stored "$1")" -gt "$2" ]; }
backends() { # CONDITION: sessions of the materializers matching it
  psql -qAtc "SELECT count(*) FROM pg_stat_activity WHERE coalesce(application_name, '') <> 'test-lock'
              AND pid <> pg_backend_pid() AND query LIKE '%parked_events%' AND $1"
}
some_backend() { [ "$(backends "$1")" -gt 0 ]; }

# --- b. each live instance expires only its own partitions' parked events -------------------------------
start b1 hkb 60
start b2 hkb 60
wait_until 60 log_assigned b1 || bad "b1 was never assigned partitions"
wait_until 60 log_assigned b2 || bad "b2 was never assigned partitions"
parked_events 3 12 >"$tmp/b.jsonl"
publish "$tmp/b.jsonl"
wait_until 60 parked_is hkb 36 || bad "$(parked hkb) of 36 events parked"
# Their wait over at once (as if an hour had passed): whichever instance
# looks first finds all of them expired, and must take only its own. (Left
# to the clock, each instance's look came two seconds after its own batch
# parked its own events, and would not have shown a look past its own.)
psql -qc "UPDATE prime_pipeline.parked_events SET parked_at = parked_at - interval '1 hour' WHERE group_id = 'hkb'"
all_expired() { parked_is hkb 0 && [ "$(unresolved)" -ge 36 ]; }
wait_until 60 all_expired && ok "the 36 parked events expired" || bad "$(parked hkb) parked, $(unresolved) dead letters"
stop b1; stop b2
[ "$(unresolved)" = 36 ] && [ "$(dead_letters | grep 'prime.error.message=unresolved' | grep -o 'prime.source.topic=[^,]*,prime.source.partition=[0-9]*,prime.source.offset=[0-9]*' | sort -u | wc -l)" = 36 ] \
  && ok "each dead-lettered once" || bad "$(unresolved) dead letters for 36 events"
# Each log in its order: the partitions held (assigned, not yet revoked) at
# each dead letter of an expired event.
foreign() { # NAME: its dead letters of partitions it did not hold, then how many it sent
  awk '/msg="partition assigned"/ || /msg="partition revoked"/ || /msg="dead-lettered"/ {
         t = p = ""
         for (i = 1; i <= NF; i++) { if ($i ~ /^topic=/) t = substr($i, 7); if ($i ~ /^partition=/) p = substr($i, 11) }
         if (/partition assigned/) held[t ":" p] = 1
         else if (/partition revoked/) delete held[t ":" p]
         else if (/unresolved/) { sent++; if (!(t ":" p in held)) bad++ }
       } END { print bad + 0, sent + 0 }' "$tmp/$1.log"
}
read -r bad1 sent1 < <(foreign b1)
read -r bad2 sent2 < <(foreign b2)
echo "# b1 expired $sent1 parked events, b2 $sent2"
[ "$bad1" = 0 ] && [ "$bad2" = 0 ] && ok "each instance expired only parked events of partitions it held" \
  || bad "expired from partitions not held: b1 $bad1, b2 $bad2"
[ "$sent1" -gt 0 ] && [ "$sent2" -gt 0 ] && [ $((sent1 + sent2)) = 36 ] \
  && ok "both expired some: the partitions were shared ($sent1 + $sent2)" || bad "expired by b1 $sent1, by b2 $sent2"
# --- a. a zombie's housekeeping is fenced ------------------------------------------------------------
# Two rounds, each a group of its own that reads the topics from their start
# (the events of part b and of the rounds before park in it too): the
# successor commits partitions the zombie had committed (1), or only
# partitions new to the group (2), which the fence once let pass.
lock_held() { [ "$(psql -qAtc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-lock' AND query LIKE '%pg_sleep%'")" = 1 ]; }
consumed_all() { [ "$(stored "$1")" = "$published" ]; }
zombie_round() { # GROUP SUCCESSOR-EVENTS NEWLY-PARKED WHAT
  local g=$1 before_dead parked0
  before_dead=$(unresolved)
  start za "$g" 5
  wait_until 60 consumed_all "$g" || bad "$g: za consumed $(stored "$g") of $published records"
  parked0=$(parked "$g")
  # The parked rows locked by the test (before their 5 s are up), so that
  # za's housekeeping, expiring them, waits inside its transaction.
  PGAPPNAME=test-lock psql -qAt -c "BEGIN" \
    -c "SELECT source_offset FROM prime_pipeline.parked_events WHERE group_id = '$g' FOR UPDATE" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
  locker=$!
  wait_until 10 lock_held || bad "$g: the test's lock on the parked rows"
  wait_until 30 some_backend "wait_event_type = 'Lock'" \
    && ok "$g: za's housekeeping expires the $parked0 parked events (waits for the test's lock)" \
    || bad "$g: za's housekeeping never came for the parked events"
  kill -STOP "${pid[za]}"
  psql -qAtc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'test-lock'" >/dev/null
  wait "$locker" 2>/dev/null; locker=
  # Its DELETE done while it sleeps: the events are out of parking in its open transaction.
  wait_until 10 some_backend "state = 'idle in transaction'" \
    && ok "$g: za stopped inside its housekeeping, the expired events taken out" \
    || bad "$g: za is not inside its housekeeping transaction"
  local at_stop
  at_stop=$(stored "$g")
  start zb "$g" 3600
  wait_until 60 log_assigned zb || bad "$g: zb never took over"
  publish "$2"
  wait_until 60 consumed_all "$g" && ok "$g: zb took over and committed $4 while za slept" \
    || bad "$g: no commit while za slept ($at_stop, now $(stored "$g") of $published)"
  kill -CONT "${pid[za]}"
  # The refusal is logged after the rollback. The zombie is killed then: back
  # in the group it would get partitions again and expire their events, its
  # own by then (part b).
  wait_until 30 fence_refused "$tmp/za.log" && grep -q 'reason="the stored offset moved: .*" records=0' "$tmp/za.log" \
    && ok "$g: the zombie's housekeeping commit is refused (logged)" \
    || bad "$g: no refused housekeeping commit: $(grep -E 'level=(warn|error)' "$tmp/za.log" | grep -v dead-lettered | tail -3)"
  local retries
  retries=$(metric_value "${port[za]}" 'prime_retries_total{worker="materializer"}')
  kill -KILL "${pid[za]}"; wait "${pid[za]}" 2>/dev/null
  [ "${retries:-0}" -ge 1 ] && ok "$g: and counted (prime_retries_total $retries)" || bad "$g: prime_retries_total: ${retries:-none}"
  parked_is "$g" $((parked0 + $3)) && ok "$g: the parked events, zb's now, were not expired by the zombie" \
    || bad "$g: $(parked "$g") parked, expected $((parked0 + $3))"
  ! grep -q 'msg="dead-lettered"' "$tmp/za.log" && [ "$(unresolved)" = "$before_dead" ] \
    && ok "$g: no dead letter for them" \
    || bad "$g: the zombie dead-lettered $(grep -c 'msg="dead-lettered"' "$tmp/za.log"), on prime.dlq $(( $(unresolved) - before_dead ))"
  stop zb && ok "$g: the successor stops cleanly" || bad "$g: zb exit $?"
}
parked_events 1 8 >"$tmp/a1.jsonl"
publish "$tmp/a1.jsonl"
parked_events 4 8 >"$tmp/a1-all.jsonl" # (not in a pipeline's subshell: event ids stay distinct)
grep '"project.created"' "$tmp/a1-all.jsonl" >"$tmp/a1-next.jsonl"
zombie_round hka1 "$tmp/a1-next.jsonl" 8 "partitions of prime.projects the zombie had committed"
users 2 8 >"$tmp/a2-next.jsonl"
zombie_round hka2 "$tmp/a2-next.jsonl" 0 "only partitions new to the group (prime.users)"
finish
