#!/usr/bin/env bash
# The runtime merges partitions by time: records of two topics, the later
# topic produced in full before the earlier one (as a backlog reaches a
# consumer a topic at a time), are applied in Kafka timestamp order across
# both topics and all their partitions, each partition in offset order.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"

export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || { echo "migrations failed"; exit 1; }
# seq numbers rows in the order the worker inserted them.
psql -qc "CREATE TABLE worker_echo (topic TEXT, kafka_partition INT, kafka_offset BIGINT, payload TEXT,
          seq BIGSERIAL, PRIMARY KEY (topic, kafka_partition, kafka_offset))" || exit 1

# Odd timestamps on merge.b, produced first; even ones on merge.a, after.
/usr/bin/python3 - "$PRIME_TEST_BROKERS" <<'PY' || { echo "producing failed"; exit 1; }
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1]})
base = 1_795_608_000_000
for topic, first in (("merge.b", 1), ("merge.a", 0)):
    for i in range(300):
        ts = base + first + 2 * i
        p.produce(topic, key="user-%d" % (i % 17), value=str(ts), timestamp=ts)
    p.flush(10)
PY
ok "600 records produced, merge.b (odd times) before merge.a (even times)"

# A partition still fetching holds the merge back for at most --linger-ms
# (or a second): long enough here for every partition's first fetch, even
# on a loaded machine.
"$PRIME_ECHO_WORKER" --topics merge.a,merge.b --batch-max 1000 --linger-ms 3000 "${group_x[@]}" \
  >"$tmp/worker.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ "$(psql -qAtc "SELECT count(*) FROM worker_echo")" = 600 ] && break; sleep 0.1; done
kill -TERM "$pid"; wait "$pid"
[ "$(psql -qAtc "SELECT count(*) FROM worker_echo")" = 600 ] || grep -v "partition assigned" "$tmp/worker.log" | tail -20
[ "$(psql -qAtc "SELECT count(*) FROM worker_echo")" = 600 ] && ok "all 600 applied" || bad "applied: $(psql -qAtc "SELECT count(*) FROM worker_echo")"
inversions=$(psql -qAtc "SELECT count(*) FROM (SELECT payload::bigint - lag(payload::bigint) OVER (ORDER BY seq) AS step FROM worker_echo) s WHERE step < 0")
[ "$inversions" = 0 ] && ok "applied in timestamp order across topics and partitions" \
  || bad "$inversions records applied before an older one; first rows: $(psql -qAtc "SELECT string_agg(topic || ':' || payload, ' ' ORDER BY seq) FROM (SELECT * FROM worker_echo ORDER BY seq LIMIT 8) s")"
finish
