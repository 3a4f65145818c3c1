#!/usr/bin/env bash
# The outbox relay under load and outage (issue 12 item 3), through
# prime-echo-worker on the dev broker and an ephemeral PostgreSQL: large
# outbox rows with the relay's producer queue shrunk to a few of them
# (-X queue.buffering.max.kbytes) are all relayed, each once, with memory
# bounded by the relay's chunk, not by the backlog; SIGTERM returns within
# seconds in the middle of a relay; a relay whose producer fails for good
# makes a new one. (A relay that cannot reach Kafka, reported by /healthz and
# the log and finishing when Kafka is back: tests/adversarial/test_relay_outage.sh.)
set -uo pipefail
tmp=$(mktemp -d)
worker_pid=
cleanup() {
  [ -n "$worker_pid" ] && kill -KILL "$worker_pid" 2>/dev/null
  kill -CONT "$PRIME_TEST_BROKER_PID" 2>/dev/null
  if [ "${failed:-0}" != 0 ]; then
    echo "--- worker log (last 30) ---"
    grep -v CONFWARN "$tmp/worker.log" | tail -30
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../support/testlib.sh"
# Peak memory is measured: in the sanitizer build, ASan would keep freed
# memory resident in its quarantine (256 MB); without one it checks the rest.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB

"$PRIME_MIGRATE" >/dev/null || { echo "migrations failed"; exit 1; }
psql -qc "CREATE TABLE worker_echo (topic TEXT, kafka_partition INT, kafka_offset BIGINT, payload TEXT,
          PRIMARY KEY (topic, kafka_partition, kafka_offset))" || exit 1


batch=0
outbox_rows() { # TOPIC COUNT KB: COUNT rows of KB kilobytes each (incompressible for Kafka, not for TOAST)
  batch=$((batch + 1))
  psql -qc "INSERT INTO prime_pipeline.outbox (group_id, topic, record_key, record_value, event_type)
            SELECT 'prime-echo', '$1', convert_to('b$batch-' || i, 'UTF8'),
                   decode(repeat(md5('$batch-' || i), $3 * 64), 'hex'), 'test.large'
            FROM generate_series(1, $2) i" || exit 1
}
outbox_count() { psql -qAtc "SELECT count(*) FROM prime_pipeline.outbox"; }
outbox_empty() { [ "$(outbox_count)" = 0 ]; }
outbox_below() { [ "$(outbox_count)" -lt "$1" ]; }
# Messages ever appended to TOPIC: the sum of its partitions' end offsets
# (the dev broker keeps only 5 MB a partition, so reading back 100 MB is no
# count; the offsets are).
appended() {
  kcat -b "$PRIME_BROKERS" -Q $(for p in 0 1 2 3; do echo "-t $1:$p:-1"; done) 2>/dev/null |
    awk '{ s += $NF } END { print s + 0 }'
}
keys_on() { kcat -b "$PRIME_BROKERS" -C -t "$1" -o beginning -e -q -f '%k\n' 2>/dev/null | sort -u | wc -l; }
port=$(free_port)
# 6 s sessions, not group_x's 4: this test stops workers about 4 s after they
# start, and with 4 s sessions that is when their first join completes and
# its sync is pending, where librdkafka 2.0.2 aborts when the consumer is
# destroyed (docs/workers.md, the relay's open question): seen in two of
# three full runs with 4 s; with 6 s, once in the test's history.
start_worker() {
  "$PRIME_ECHO_WORKER" --metrics-port "$port" -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 "$@" \
    >>"$tmp/worker.log" 2>&1 &
  worker_pid=$!
}
healthz() { http_get "$port" /healthz; }
healthz_is() { healthz | grep -q "status=$1"; }
# SIGTERM, then the seconds until the worker returned; kill -9 after 20 s.
stop_timed() {
  local t0=$SECONDS
  kill -TERM "$worker_pid"
  if wait_until 20 bash -c "! kill -0 $worker_pid 2>/dev/null"; then
    wait "$worker_pid"; stop_rc=$?
  else
    kill -KILL "$worker_pid"; wait "$worker_pid" 2>/dev/null; stop_rc=killed
  fi
  worker_pid=
  stop_seconds=$((SECONDS - t0))
}

# 1. 400 rows of 256 KB (100 MB), the relay's producer queue 1 MB: before,
# the relay took 5,000 rows a transaction (the whole 100 MB in memory) and
# produced with RD_KAFKA_MSG_F_BLOCK from the only thread that serves
# delivery reports: the fifth message blocked it for good.
outbox_rows prime.snapshots 400 256
start_worker -X queue.buffering.max.kbytes=1024 --outbox-chunk-mb 4
wait_until 60 outbox_empty && ok "400 rows of 256 KB relayed with a 1 MB producer queue" \
  || bad "relay stuck: $(outbox_count) of 400 rows left"
[ "$(appended prime.snapshots)" = 400 ] && ok "400 messages appended to the topic: each relayed once" \
  || bad "$(appended prime.snapshots) messages appended for 400 rows"
hwm=$(vm_hwm "$worker_pid")
echo "relay of 100 MB: VmHWM ${hwm} kB"
[ "${hwm:-999999}" -lt 61440 ] && ok "peak resident set ${hwm} kB < 60 MB for a 100 MB backlog" \
  || bad "peak resident set ${hwm} kB"
stop_timed
[ "$stop_rc" = 0 ] && [ "$stop_seconds" -le 5 ] && ok "SIGTERM after the relay: exit 0 in ${stop_seconds} s" \
  || bad "SIGTERM after the relay: exit $stop_rc in ${stop_seconds} s"

# 2. SIGTERM in the middle of a relay that cannot finish (the dev broker
# stopped with SIGSTOP once the relay has begun) returns within seconds;
# what Kafka did not confirm stays in the outbox and goes out after a
# restart.
start_worker --outbox-chunk-mb 1
wait_until 60 healthz_is 200 || bad "healthz before the relay: $(healthz)"
outbox_rows prime.audit 300 32
wait_until 60 outbox_below 300 || bad "the relay did not start: $(outbox_count) rows"
kill -STOP "$PRIME_TEST_BROKER_PID"
stop_timed
kill -CONT "$PRIME_TEST_BROKER_PID"
left=$(outbox_count)
[ "$stop_rc" = 0 ] && [ "$stop_seconds" -le 5 ] && ok "SIGTERM mid-relay, Kafka unreachable: exit 0 in ${stop_seconds} s" \
  || bad "SIGTERM mid-relay: exit $stop_rc in ${stop_seconds} s"
[ "$left" -gt 0 ] && ok "stopped mid-relay ($left rows left)" || bad "the relay had finished: not mid-relay"
assigned_before=$(assigned_in "$tmp/worker.log")
start_worker
wait_until 60 outbox_empty && ok "the rest relayed after a restart" || bad "after restart: $(outbox_count) left"
[ "$(keys_on prime.audit)" = 300 ] && ok "every row relayed" || bad "$(keys_on prime.audit) of 300 keys on the topic"
# Stopped only once it has its partitions: librdkafka 2.0.2 aborts a consumer
# destroyed between its JoinGroup answer and its first assignment
# (confluentinc/librdkafka#4312, docs/workers.md), and this one joins while
# the member stopped above is still in the group.
assigned_now() { [ "$(assigned_in "$tmp/worker.log")" -gt "$assigned_before" ]; }
wait_until 30 assigned_now || bad "the restarted worker was never assigned partitions"
stop_timed
[ "$stop_rc" = 0 ] && ok "clean stop" || bad "stop: exit $stop_rc"

# 3. The relay's own producer fails for good: librdkafka's test hook raises
# an idempotent producer's fatal error at the first chunk it relays, while
# Kafka is unreachable. Before, the producer refused every message from then
# on and the relay only showed as stuck; now the failure is logged with its
# reason and counted, /healthz is 503 while the relay is down, a new
# producer relays the rows once Kafka is back, and what is published after
# it reaches the topic too, each row once, none left in the outbox.
PRIME_TEST_RELAY_FATAL=1 PRIME_ECHO_EMIT=prime.fatal start_worker
wait_until 60 healthz_is 200 || bad "healthz before the fatal error: $(healthz)"
kill -STOP "$PRIME_TEST_BROKER_PID"
outbox_rows prime.fatal 20 1
fatal_logged() { grep -q 'level=error .*msg="outbox producer failed for good; replacing it" error=".*test_fatal_error' "$tmp/worker.log"; }
wait_until 30 fatal_logged && ok "the relay producer's fatal error is logged with librdkafka's reason" \
  || bad "no fatal log: $(grep -i fatal "$tmp/worker.log" | tail -3)"
down() { healthz | grep -q "outbox relay down: its producer failed for good"; }
wait_until 10 down && healthz_is 503 && ok "/healthz 503 while the relay is down" || bad "healthz: $(healthz)"
relay_fatal() { metric_value "$port" 'prime_producer_fatal_errors_total{worker="echo",producer="outbox"}'; }
[ "$(relay_fatal)" = 1 ] && ok "counted in /metrics" || bad "prime_producer_fatal_errors_total outbox: $(relay_fatal)"
kill -CONT "$PRIME_TEST_BROKER_PID"
wait_until 60 outbox_empty && ok "the rows held by the failed producer relayed by a new one" \
  || bad "after the fatal error: $(outbox_count) rows left"
wait_until 10 healthz_is 200 && ok "/healthz 200 once Kafka confirms again" || bad "healthz: $(healthz)"
for i in $(seq 20); do echo "after-fatal-$i"; done | kcat -b "$PRIME_BROKERS" -P -t prime.test 2>/dev/null
echo_rows() { psql -qAtc "SELECT count(*) FROM worker_echo WHERE payload LIKE 'after-fatal-%'"; }
all_applied() { [ "$(echo_rows)" = 20 ]; }
wait_until 60 all_applied && wait_until 30 outbox_empty || bad "published after the fatal error: $(echo_rows) applied, $(outbox_count) in the outbox"
[ "$(echo_rows)" = 20 ] && ok "the 20 records published after it applied once each" || bad "$(echo_rows) of 20 applied"
[ "$(keys_on prime.fatal)" = 40 ] && ok "all 40 rows on the topic (20 held at the failure, 20 after)" \
  || bad "$(keys_on prime.fatal) of 40 keys on the topic"
outbox_empty && ok "nothing left in the outbox" || bad "$(outbox_count) rows left in the outbox"
kill -0 "$worker_pid" 2>/dev/null && ok "the worker runs on" || bad "the worker exited"
stop_timed
[ "$stop_rc" = 0 ] && ok "clean stop after the fatal error" || bad "stop: exit $stop_rc"

finish
