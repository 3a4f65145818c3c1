#!/usr/bin/env bash
# The worker runtime against the dev broker and an ephemeral PostgreSQL
# (tests/with-stack --pg --broker), through prime-echo-worker: every record
# applied exactly once across restarts, kill -9 at random moments and a
# PostgreSQL restart; poison records dead-lettered with their reasons;
# metrics and health served; SIGTERM a clean stop.
set -uo pipefail
tmp=$(mktemp -d)
worker_pid=
# On failure, the workers' warnings and errors go to the output (ctest shows it).
cleanup() {
  [ -n "$worker_pid" ] && kill -KILL "$worker_pid" 2>/dev/null
  if [ "${failed:-0}" != 0 ]; then
    echo "--- worker log (warnings and errors, last 40) ---"
    grep -hE 'level=(warn|error)' "$tmp"/*.log | grep -v dead-lettered | tail -40
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
echo_worker=$PRIME_ECHO_WORKER
root=$PRIME_SOURCE_DIR

"$PRIME_MIGRATE" >/dev/null || { echo "migrations failed"; exit 1; }
psql -qc "CREATE TABLE worker_echo (topic TEXT, kafka_partition INT, kafka_offset BIGINT, payload TEXT,
          PRIMARY KEY (topic, kafka_partition, kafka_offset))" || exit 1

produced=0
produce() { # COUNT [PREFIX]: COUNT records with keys spread over partitions
  local i
  for ((i = 0; i < $1; i++)); do printf 'user-%d\t%s-%d\n' $((RANDOM % 50)) "${2:-record}" $((produced + i)); done |
    kcat -b "$PRIME_BROKERS" -P -t prime.test -K $'\t' 2>>"$tmp/kcat.log"
  produced=$((produced + $1))
}
rows() { psql -qAtc "SELECT count(*) FROM worker_echo"; }
stored_sum() { psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'prime-echo'"; }
# A killed worker stays in the group until its session times out (45 s by
# default); a short one (group_x, testlib.sh) keeps the restarts below quick.
start_worker() { # [ARGS]; LOG=FILE for a log of its own
  "$echo_worker" --batch-max "${BATCH:-200}" --linger-ms 50 "${group_x[@]}" \
    "$@" >>"${LOG:-$tmp/worker.log}" 2>&1 &
  worker_pid=$!
}
assigned() { assigned_in "${1:-$tmp/worker.log}"; }
assigned_over() { [ "$(assigned "${2:-}")" -gt "$1" ]; }
stored_over() { [ "$(stored_sum)" -gt "$1" ]; }
wait_rows() { # N SECONDS: until worker_echo has N rows
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ "$(rows)" = "$1" ] && return 0; sleep 0.1; done
  return 1
}
stop_worker() { kill -TERM "$worker_pid"; wait "$worker_pid"; local rc=$?; worker_pid=; return $rc; }

# Usage errors
"$echo_worker" --batch-max 0 2>"$tmp/e"; [ $? = 2 ] && grep -q "expected an integer from 1" "$tmp/e" && ok "bad option is a usage error" || bad "usage: $(cat "$tmp/e")"
env -u PRIME_BROKERS "$echo_worker" 2>"$tmp/e"; [ $? = 2 ] && grep -q "no brokers" "$tmp/e" && ok "no brokers is a usage error" || bad "no brokers"

# 1. Drain, then stop cleanly.
produce 1000
port=$(free_port)
start_worker --metrics-port "$port"
wait_rows 1000 60 && ok "1000 records applied" || bad "applied $(rows) of 1000"
[ "$(stored_sum)" = 1000 ] && ok "stored offsets add up to the records" || bad "stored offsets sum $(stored_sum)"
metrics=$( (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3) 2>/dev/null)
grep -q 'prime_events_applied_total{worker="echo"} 1000' <<<"$metrics" && ok "/metrics counts applied events" || bad "metrics: $(head -c 400 <<<"$metrics")"
grep -q 'prime_consumer_lag{worker="echo",topic="prime.test"' <<<"$metrics" && ok "/metrics has lag per partition" || bad "no lag metric"
grep -q 'prime_batch_seconds_count' <<<"$metrics" && ok "/metrics has batch latency" || bad "no latency"
health=$( (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3; cat <&3) 2>/dev/null)
grep -q "200 OK" <<<"$health" && ok "/healthz is 200 while healthy" || bad "healthz: $health"
stop_worker && ok "SIGTERM: clean stop, exit 0" || bad "SIGTERM exit status"
grep -q 'msg="stopped"' "$tmp/worker.log" && ok "stop is logged" || bad "no stop log"

# 2. A restart applies nothing twice, and then what is new.
assigned_before=$(assigned)
start_worker
wait_until 60 assigned_over "$assigned_before" || bad "no assignment after a restart"
[ "$(rows)" = 1000 ] && ok "restart re-applies nothing" || bad "after restart: $(rows) rows"
produce 500
wait_rows 1500 60 && ok "new records after a restart are applied" || bad "applied $(rows) of 1500"
stop_worker

# 3. kill -9 at random moments, restart each time: exactly once in the end.
# Each kill lands after the worker has committed since the previous one
# (the first assignment takes seconds, more after a kill: a kill before
# it would prove nothing), at a random point of a batch (each takes 0.3 s).
produce 3000
progressed=0 last=$(stored_sum)
for round in 1 2 3 4; do
  PRIME_ECHO_DELAY_MS=300 start_worker
  wait_until 60 stored_over "$last"
  sleep "0.$((RANDOM % 4))$((RANDOM % 10))" # the random point of the kill, not a wait
  kill -KILL "$worker_pid"; wait "$worker_pid" 2>/dev/null; worker_pid=
  now=$(stored_sum)
  [ "$now" -gt "$last" ] && [ "$now" -lt 4500 ] && progressed=$((progressed + 1))
  echo "kill $round: stored offsets $last -> $now"
  last=$now
done
[ "$progressed" = 4 ] && ok "each of the four kills landed after committed progress, before the end" \
  || bad "only $progressed of 4 kills came after progress"
start_worker
wait_rows 4500 90 && ok "kill -9 four times: every record applied once (PK holds, count exact)" || bad "after kills: $(rows) of 4500"
[ "$(stored_sum)" = 4500 ] && ok "stored offsets match after kills" || bad "stored sum $(stored_sum)"
stop_worker

# 4. PostgreSQL goes down under the worker (an immediate stop: a crash, as
# far as PostgreSQL knows) while records arrive: it waits, then goes on.
assigned_before=$(assigned)
PRIME_ECHO_DELAY_MS=20 start_worker
wait_until 60 assigned_over "$assigned_before" || bad "no assignment"
"$root/scripts/pg-down" "$PRIME_TEST_PG_DIR" --keep
produce 2000
outage_seen() { grep -qE 'level=warn .*(database unreachable|batch abandoned|cannot read stored offsets)' "$tmp/worker.log"; }
wait_until 60 outage_seen || bad "the worker did not notice the outage"
kill -0 "$worker_pid" 2>/dev/null && ok "worker keeps running while the database is down" || bad "worker exited"
"$root/scripts/pg-up" "$PRIME_TEST_PG_DIR" || bad "PostgreSQL did not come back"
wait_rows 6500 90 && ok "after the restart every record is applied once" || bad "after pg restart: $(rows) of 6500"
grep -qE 'level=warn .*(database unreachable|batch abandoned|cannot read stored offsets)' "$tmp/worker.log" \
  && ok "the outage is logged" || bad "no outage log"
stop_worker

# 5. Poison records go to prime.dlq with their reasons; the rest is applied.
produce 10 POISON
produce 90
start_worker
wait_rows 6590 60 && ok "records around poison ones are applied" || bad "with poison: $(rows) of 6590"
stop_worker
dlq=$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h|%s\n' 2>/dev/null)
[ "$(grep -c . <<<"$dlq")" = 10 ] && ok "10 dead letters" || bad "dead letters: $(grep -c . <<<"$dlq")"
grep -q 'prime.error.class=invalid' <<<"$dlq" && grep -q 'prime.source.topic=prime.test' <<<"$dlq" \
  && grep -q 'prime.source.offset=' <<<"$dlq" && grep -q 'prime.error.message=a poison record' <<<"$dlq" \
  && ok "dead letters carry class, message and source coordinates" || bad "dlq headers: $(head -1 <<<"$dlq")"
grep -q '|POISON-' <<<"$dlq" && ok "dead letters carry the original bytes" || bad "dlq payload"
[ "$(stored_sum)" = 6600 ] && ok "offsets move past dead letters" || bad "stored sum $(stored_sum)"

# 6. Two workers in one group hand partitions to each other (cooperative
# rebalancing) while one is stopped and restarted and the other killed: the
# revoking side commits before it lets go, the fencing refuses stale
# commits, and every record is applied once (a double apply would violate
# the primary key and stop a worker with exit status 1).
produce 4000
LOG=$tmp/first.log start_worker; first=$worker_pid
LOG=$tmp/second.log PRIME_ECHO_DELAY_MS=10 start_worker; second=$worker_pid
wait_until 60 assigned_over 0 "$tmp/first.log" && wait_until 60 assigned_over 0 "$tmp/second.log" \
  || bad "both workers never held partitions"
kill -TERM "$first"; wait "$first"; rc_first=$?
before=$(assigned "$tmp/first.log")
LOG=$tmp/first.log start_worker; first=$worker_pid
wait_until 60 assigned_over "$before" "$tmp/first.log" || bad "the restarted worker got no partitions"
kill -KILL "$second"; wait "$second" 2>/dev/null
LOG=$tmp/second.log start_worker; second=$worker_pid
expected=$((6590 + 4000))
for _ in $(seq 900); do [ "$(rows)" = "$expected" ] && break; sleep 0.1; done
[ "$(rows)" = "$expected" ] && ok "two workers, a stop and a kill: every record applied once" || bad "two workers: $(rows) of $expected"
[ "$rc_first" = 0 ] && ok "the stopped worker handed over cleanly" || bad "stopped worker exit $rc_first"
kill -TERM "$first" "$second"; wait "$first"; rc1=$?; wait "$second"; rc2=$?; worker_pid=
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] && ok "both workers stop cleanly (no double apply)" || bad "worker exits $rc1 $rc2"

# 7. A real zombie: a worker stopped (SIGSTOP) in the middle of a batch for
# longer than its session timeout loses its partitions to another worker,
# which commits; resumed (SIGCONT), the zombie finishes its batch and its
# commit is refused, and the stored offsets only ever move forward.
( while :; do
    psql -qAtc "SELECT topic || '/' || kafka_partition, next_offset FROM prime_pipeline.consumer_offsets
                WHERE group_id = 'prime-echo'" 2>/dev/null
    sleep 0.05 # a sampling interval, not a wait
  done ) >"$tmp/offsets.log" &
sampler=$!
produce 3000
base=$(stored_sum)
LOG=$tmp/zombie.log PRIME_ECHO_DELAY_MS=1500 start_worker; zombie=$worker_pid
wait_until 60 stored_over "$base" || bad "the zombie-to-be never committed"
# Inside a batch: its transaction open for 0.2 s (the delay comes before the
# rows; housekeeping has none), then a random point of the 1.5 s.
in_batch() { [ "$(psql -qAtc "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'
                              AND now() - xact_start > interval '200 ms'")" -gt 0 ]; }
wait_until 60 in_batch || bad "the zombie-to-be is not in a batch"
sleep "0.$((RANDOM % 6))" # the random point, not a wait
kill -STOP "$zombie"
at_stop=$(stored_sum)
LOG=$tmp/other.log start_worker; other=$worker_pid
wait_until 60 stored_over "$at_stop" && ok "another worker took over and committed while the zombie slept" \
  || bad "no commit while the zombie slept"
kill -CONT "$zombie"
wait_until 30 fence_refused "$tmp/zombie.log" && ok "the zombie's commit is refused" \
  || bad "no refused commit: $(grep -E 'level=(warn|error)' "$tmp/zombie.log" | tail -3)"
expected=$((expected + 3000))
wait_rows "$expected" 120 && ok "zombie and successor: every record applied once" || bad "zombie: $(rows) of $expected"
kill "$sampler"; wait "$sampler" 2>/dev/null
backwards=$(awk -F'|' '($1 in last) && $2 < last[$1] { n++ } { last[$1] = $2 } END { print n + 0 }' "$tmp/offsets.log")
[ "$backwards" = 0 ] && [ -s "$tmp/offsets.log" ] && ok "stored offsets only moved forward ($(wc -l <"$tmp/offsets.log") samples)" \
  || bad "stored offsets moved back $backwards times"
kill -TERM "$zombie" "$other"; wait "$zombie"; rc1=$?; wait "$other"; rc2=$?; worker_pid=
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] && ok "zombie and successor stop cleanly (no double apply)" || bad "worker exits $rc1 $rc2"
! grep -q 'level=error' "$tmp"/*.log && ok "no errors logged" || bad "errors: $(grep -h 'level=error' "$tmp"/*.log | head -3)"

! grep -q 'msg="dead-lettered"' <(sed -n "/two workers/,\$p" "$tmp/worker.log" 2>/dev/null) && [ "$(on_topic prime.dlq)" = 10 ] \
  && ok "two workers: nothing dead-lettered (a double apply would be)" || bad "dead letters after handover: $(on_topic prime.dlq)"

http() { (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3; cat <&3) 2>/dev/null; }
until_true() { # SECONDS 'CONDITION': until the condition (shell text, evaluated each time) holds
  local i limit=$(($1 * 10))
  for ((i = 0; i < limit; i++)); do eval "$2" && return 0; sleep 0.1; done
  return 1
}
raw() { # KEY VALUE: one record, its value bytes as given (printf escapes)
  printf "%s\t$2\n" "$1" | kcat -b "$PRIME_BROKERS" -P -t prime.test -K $'\t' 2>>"$tmp/kcat.log"
  produced=$((produced + 1))
}
healthz_says() { http /healthz | grep -q "$1"; }
metric() { metric_value "$port" "$1{worker=\"echo\"}"; }

# 7. Records at fault that apply() does not dead-letter itself: one it
# refuses with an error (as an answer that does not fit its schema), one cut
# inside a UTF-8 character (PostgreSQL refuses the text, SQLSTATE 22021).
# Each is dead-lettered with its reason; the worker keeps running and
# applies every other record (it used to exit 1, on every restart).
start_worker --metrics-port "$port"
dlq_before=$(on_topic prime.dlq) rows_before=$(rows)
produce 20
raw user-1 'FAIL-answer'
raw user-2 'cut-\xc3'
produce 20
wait_rows $((rows_before + 40)) 60 && ok "records around two poison records are applied" || bad "poison: $(rows) of $((rows_before + 40))"
until_true 20 '[ "$(on_topic prime.dlq)" -ge $((dlq_before + 2)) ]'
kill -0 "$worker_pid" 2>/dev/null && ok "the worker keeps running past poison records" || bad "the worker exited"
dlq=$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h|%s\n' 2>/dev/null | grep -a -E '\|(FAIL-answer|cut-)')
[ "$(on_topic prime.dlq)" = $((dlq_before + 2)) ] && [ "$(grep -c . <<<"$dlq")" = 2 ] && ok "2 dead letters, each once" \
  || bad "dead letters: $(( $(on_topic prime.dlq) - dlq_before )): $dlq"
grep -q 'prime.error.message=the answer does not fit its schema (test).*|FAIL-answer' <<<"$dlq" \
  && ok "the refused record is dead-lettered with apply()'s reason" || bad "dlq: $dlq"
grep -a -q 'prime.error.message=inserting worker_echo rows: .*SQLSTATE 22021.*|cut-' <<<"$dlq" \
  && ok "the record cut inside a UTF-8 character is dead-lettered with the database's reason" || bad "dlq: $dlq"
[ "$(stored_sum)" = "$produced" ] && ok "offsets move past the poison records" || bad "stored sum $(stored_sum) of $produced"

# 8. An environment fault: a column dropped by hand. Nothing is
# dead-lettered and nothing committed; /healthz says why; the fault is
# logged once, not at every retry; once the column is back, every record
# waiting is applied.
dlq_before=$(on_topic prime.dlq) rows_before=$(rows) stored_before=$(stored_sum)
faults_before=$(grep -c 'msg="environment fault:' "$tmp/worker.log")
psql -qc "ALTER TABLE worker_echo DROP COLUMN payload"
produce 30
until_true 30 "healthz_says 'environment fault, retrying'" && ok "/healthz reports the environment fault" \
  || bad "healthz: $(http /healthz)"
healthz_says '503 Service Unavailable' && healthz_says "column 'payload' of relation 'worker_echo' does not exist" && ok "/healthz is 503 and names the column" \
  || bad "healthz: $(http /healthz)"
until_true 30 '[ "$(metric prime_retries_total)" -ge 4 ]' && ok "the batch is retried" || bad "retries $(metric prime_retries_total)"
[ "$(http /metrics | awk '$1 == "prime_up{worker=\"echo\"}" {print $2}')" = 0 ] && ok "prime_up is 0 during the fault" \
  || bad "prime_up: $(http /metrics | grep '^prime_up')"
[ "$(grep -c 'msg="environment fault:' "$tmp/worker.log")" = $((faults_before + 1)) ] \
  && ok "the fault is logged once, not per retry" || bad "fault lines: $(grep -c 'environment fault:' "$tmp/worker.log")"
[ "$(on_topic prime.dlq)" = "$dlq_before" ] && [ "$(rows)" = "$rows_before" ] && [ "$(stored_sum)" = "$stored_before" ] \
  && ok "nothing dead-lettered, nothing applied, no offset moved" || bad "during the fault: dlq $(on_topic prime.dlq) rows $(rows) stored $(stored_sum)"
kill -0 "$worker_pid" 2>/dev/null && ok "the worker waits, it does not exit" || bad "the worker exited"
psql -qc "ALTER TABLE worker_echo ADD COLUMN payload TEXT"
wait_rows $((rows_before + 30)) 60 && ok "the column restored: every waiting record is applied" || bad "after restore: $(rows)"
[ "$(psql -qAtc "SELECT count(payload) FROM worker_echo")" = 30 ] && ok "with its payload" || bad "payloads: $(psql -qAtc "SELECT count(payload) FROM worker_echo")"
until_true 10 "healthz_says '200 OK'" && ok "/healthz is 200 again" || bad "healthz: $(http /healthz)"
grep -q 'msg="environment fault cleared"' "$tmp/worker.log" && ok "the end of the fault is logged" || bad "no recovery line"
[ "$(on_topic prime.dlq)" = "$dlq_before" ] && ok "still nothing dead-lettered" || bad "dlq $(on_topic prime.dlq)"
stop_worker

# 9. The dead-letter producer fails for good (an idempotent producer's
# fatal error, raised through librdkafka's test hook): logged, replaced,
# and the dead letters still go out, each once.
PRIME_TEST_DLQ_FATAL=1 start_worker
dlq_before=$(on_topic prime.dlq) rows_before=$(rows)
produce 5 POISON
produce 15
wait_rows $((rows_before + 15)) 60 && ok "after a fatal producer error, records are applied" || bad "after fatal: $(rows)"
until_true 20 '[ "$(on_topic prime.dlq)" -ge $((dlq_before + 5)) ]'
[ "$(on_topic prime.dlq)" = $((dlq_before + 5)) ] && ok "and the dead letters delivered by a new producer, each once" \
  || bad "dlq after fatal: $(( $(on_topic prime.dlq) - dlq_before ))"
grep -q 'level=error .*msg="dead-letter producer failed for good; replacing it" error="_FATAL\|level=error .*failed for good; replacing it" error=".*OUT_OF_ORDER' "$tmp/worker.log" \
  && ok "the fatal error is logged with librdkafka's reason" || bad "no fatal log: $(grep 'failed for good' "$tmp/worker.log")"
kill -0 "$worker_pid" 2>/dev/null && ok "the worker runs on" || bad "the worker exited"
stop_worker

# 10. Records lost to retention: the dev broker keeps the last 5 MB of a
# partition. Partition 0 gets 7 MB while the worker is stopped, so its
# stored offset falls before the log's start: logged, counted.
stored0=$(psql -qAtc "SELECT next_offset FROM prime_pipeline.consumer_offsets WHERE group_id = 'prime-echo' AND topic = 'prime.test' AND kafka_partition = 0")
big=$(head -c 100000 /dev/zero | tr '\0' x)
for i in $(seq 70); do printf 'big-%d-%s\n' "$i" "$big"; done | kcat -b "$PRIME_BROKERS" -P -t prime.test -p 0 2>>"$tmp/kcat.log"
first0=$(kcat -b "$PRIME_BROKERS" -C -t prime.test -p 0 -o beginning -c 1 -q -f '%o\n' 2>/dev/null)
if [ -n "$stored0" ] && [ -n "$first0" ] && [ "$first0" -gt "$stored0" ]; then
  start_worker --metrics-port "$port"
  until_true 60 "grep -q 'msg=\"records deleted from the log before they were applied' \"\$tmp/worker.log\"" \
    && ok "records lost to retention are logged" || bad "no retention log"
  grep -q "partition=0 stored=$stored0 log_start=$first0 lost=$((first0 - stored0))" "$tmp/worker.log" \
    && ok "with the partition, the offsets and the count" || bad "retention log: $(grep 'retention' "$tmp/worker.log")"
  until_true 20 '[ "$(metric prime_records_skipped_total)" = $((first0 - stored0)) ]' \
    && ok "and counted in /metrics" || bad "skipped metric $(metric prime_records_skipped_total), expected $((first0 - stored0))"
  stop_worker
else
  bad "retention did not delete records before the stored offset ($stored0, log start $first0)"
fi

# 11. The stored offset past the end of the log (the topic was recreated,
# say): librdkafka starts over at the beginning and the records before the
# stored offset are passed over; logged once, counted.
psql -qc "UPDATE prime_pipeline.consumer_offsets SET next_offset = next_offset + 1000000 WHERE group_id = 'prime-echo' AND topic = 'prime.test' AND kafka_partition = 0"
in0=$(( $(kcat -b "$PRIME_BROKERS" -C -t prime.test -p 0 -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) ))
start_worker --metrics-port "$port"
until_true 60 "grep -q 'msg=\"stored offset is past the end of the log' \"\$tmp/worker.log\"" \
  && ok "a stored offset past the log's end is logged" || bad "no log for a stored offset past the end"
until_true 30 '[ "$(metric prime_records_skipped_total)" = "$in0" ]' \
  && ok "each record passed over is counted once ($in0)" || bad "skipped $(metric prime_records_skipped_total), expected $in0"
[ "$(grep -c 'msg="stored offset is past the end of the log' "$tmp/worker.log")" = 1 ] \
  && ok "logged once" || bad "logged $(grep -c 'stored offset is past' "$tmp/worker.log") times"
stop_worker

finish
