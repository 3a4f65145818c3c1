#!/usr/bin/env bash
# A worker's memory is bounded by bytes (issue 12 item 8), through
# prime-echo-worker on an ephemeral PostgreSQL and a dev broker of its own
# with 64 partitions (each keeps 5 MB: room for the 100 MB produced here):
# fed 100 KB records faster than it applies them, a worker with
# --memory-max-mb 16 stays near that bound and applies every record once;
# with its outbox relay unable to reach Kafka, batches stop once the
# outbox holds more than --outbox-max-mb, /healthz says why, and everything
# goes on when Kafka is back.
set -uo pipefail
tmp=$(mktemp -d)
worker_pid= broker_pid=
cleanup() {
  [ -n "$worker_pid" ] && kill -KILL "$worker_pid" 2>/dev/null
  if [ -n "$broker_pid" ]; then kill -CONT "$broker_pid"; kill -TERM "$broker_pid"; wait "$broker_pid"; fi 2>/dev/null
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
export PRIME_DB=$PRIME_TEST_DB

"$PRIME_DEVBROKER" --partitions 64 --topic prime.test --topic prime.derived --bootstrap-file "$tmp/bootstrap" \
  >/dev/null 2>"$tmp/broker.log" &
broker_pid=$!
wait_until 10 test -s "$tmp/bootstrap" || { echo "dev broker did not start: $(cat "$tmp/broker.log")"; exit 1; }
export PRIME_BROKERS=$(cat "$tmp/bootstrap")
"$PRIME_MIGRATE" >/dev/null || { echo "migrations failed"; exit 1; }
psql -qc "CREATE TABLE worker_echo (topic TEXT, kafka_partition INT, kafka_offset BIGINT, payload TEXT,
          PRIMARY KEY (topic, kafka_partition, kafka_offset))" || exit 1

produced=0
produce() { # COUNT: records of 100 KB, one key each
  python3 -c 'import sys
first, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + n):
    sys.stdout.write("user-%d\t%s-%d\n" % (i, "x" * 100000, i))' "$produced" "$1" |
    kcat -b "$PRIME_BROKERS" -P -t prime.test -K $'\t' 2>>"$tmp/kcat.log"
  produced=$((produced + $1))
}
rows() { psql -qAtc "SELECT count(*) FROM worker_echo"; }
rows_are() { [ "$(rows)" = "$1" ]; }
rows_over() { [ "$(rows)" -gt "$1" ]; }
outbox_bytes() { psql -qAtc "SELECT coalesce(sum(octet_length(record_value)), 0) FROM prime_pipeline.outbox"; }
outbox_empty() { [ "$(outbox_bytes)" = 0 ]; }
port=$(free_port)
healthz() { http_get "$port" /healthz; }
healthz_says() { healthz | grep -q "$1"; }
start_worker() {
  "$PRIME_ECHO_WORKER" --metrics-port "$port" --memory-max-mb 16 "${group_x[@]}" "$@" \
    >>"$tmp/worker.log" 2>&1 &
  worker_pid=$!
}
stop_worker() { kill -TERM "$worker_pid"; wait "$worker_pid"; local rc=$?; worker_pid=; return $rc; }

# 1. 1,000 records of 100 KB (100 MB) waiting, applied at most ten batches a
# second: before, the worker took them all in (1,000 records a partition
# before pausing, 10,000 a batch).
produce 1000
PRIME_ECHO_DELAY_MS=100 start_worker
wait_until 120 rows_are 1000 && ok "1000 records of 100 KB applied" || bad "applied $(rows) of 1000"
hwm=$(vm_hwm "$worker_pid")
echo "100 MB through --memory-max-mb 16: VmHWM ${hwm} kB"
[ "${hwm:-999999}" -lt 65536 ] && ok "peak resident set ${hwm} kB < 64 MB" || bad "peak resident set ${hwm} kB"
stop_worker && ok "clean stop" || bad "stop"

# 2. The relay cannot reach Kafka (the broker stopped with SIGSTOP while
# the worker holds records): batches stop once the outbox holds more than
# --outbox-max-mb 2, /healthz says so (still 200: flow control, not a
# fault), and all goes on when Kafka is back.
produce 300
PRIME_ECHO_DELAY_MS=300 PRIME_ECHO_EMIT=prime.derived start_worker --outbox-max-mb 2 --stall-seconds 600
wait_until 60 rows_over 1010 || bad "the worker did not start applying: $(rows)"
kill -STOP "$broker_pid"
if wait_until 60 healthz_says "batches waiting for the outbox relay"; then
  healthz | grep -q "status=200" && ok "/healthz: batches waiting for the outbox relay (200)" || bad "healthz: $(healthz)"
else
  bad "healthz while the relay is stuck: $(healthz)"
fi
grep -q 'msg="batches wait for the outbox relay"' "$tmp/worker.log" && ok "the wait is logged" || bad "no log line"
held=$(rows) backlog=$(outbox_bytes)
# Once waiting, no new batch is taken (the one already taken may commit:
# at most 8 MB, 80 records).
! wait_until 3 rows_over $((held + 80)) && ok "no new batch taken while waiting ($held rows, then $(rows))" \
  || bad "rows went on: $(rows) > $held + 80"
echo "outbox while waiting: $backlog bytes"
[ "$backlog" -lt $((2 * 1048576 + 8 * 1048576)) ] && ok "outbox within its bound and one batch ($backlog bytes)" \
  || bad "outbox holds $backlog bytes"
kill -CONT "$broker_pid"
wait_until 120 rows_are 1300 && ok "all 1300 applied once Kafka is back" || bad "applied $(rows) of 1300"
wait_until 60 outbox_empty && ok "outbox relayed" || bad "outbox holds $(outbox_bytes) bytes"
wait_until 10 healthz_says "^ok$" && ok "/healthz plain ok again" || bad "healthz: $(healthz)"
grep -q 'msg="outbox relay caught up; batches resume"' "$tmp/worker.log" && ok "the resumption is logged" \
  || bad "no resume log line"
stop_worker && ok "clean stop" || bad "stop"

finish
