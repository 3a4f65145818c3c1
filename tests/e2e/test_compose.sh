#!/usr/bin/env bash
# The compose deployment, as far as a machine without a Docker engine can
# check it: docker-compose config accepts the file with either env file and
# resolves it to what docs/operations.md promises (three brokers with RF 3
# and min.insync.replicas=2 under ha.env; every worker built from
# compose/Dockerfile, health-checked on /healthz, started after the migrate
# and topic-init jobs; host ports on loopback only), and compose/e2e.sh says
# so and exits 77 when there is no engine. Exits 77 (skipped) without
# docker-compose.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v docker-compose >/dev/null || { echo "docker-compose is not installed (scripts/setup installs it): skipped"; exit 77; }

for env in .env ha.env; do
  if docker-compose --project-directory "$src/compose" -f "$src/compose/docker-compose.yml" --env-file "$src/compose/$env" \
      config >"$tmp/$env.yml" 2>"$tmp/err"; then
    ok "docker-compose config accepts the file with $env"
  else
    bad "docker-compose config with $env: $(cat "$tmp/err")"
  fi
done

facts() { # ENV-FILE: what the resolved file says, one fact a line
  /usr/bin/python3 - "$1" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
workers = ["prime-materializer", "prime-snapshot-writer", "prime-audit-writer", "prime-analyzer"]
for w in workers:
    s = c[w]
    print(w, s["build"]["dockerfile"], "healthz" if "/healthz" in " ".join(s["healthcheck"]["test"]) else "no-healthz",
          ",".join(sorted(k for k, v in s["depends_on"].items() if v["condition"] == "service_completed_successfully")),
          "--metrics-port 9100" if "9100" in s["command"] else "no-metrics", "ports" if s.get("ports") else "no-ports")
t = c["topic-init"]["command"]
print("topic-init", t[0], "partitions", t[t.index("--partitions") + 1], "rf", t[t.index("--replication-factor") + 1], t[t.index("--config") + 1])
print("brokers", c["prime-materializer"]["environment"]["PRIME_BROKERS"])
for n, s in sorted(c.items()):
    for p in s.get("ports", []):
        host = p["host_ip"] if isinstance(p, dict) else str(p).split(":")[0]
        if host != "127.0.0.1":
            print("port not on loopback:", n, p)
print("kafka-1", c["kafka-1"]["image"], c["kafka-1"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"], c["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"])
PY
}
expected_workers="prime-materializer compose/Dockerfile healthz prime-migrate,topic-init --metrics-port 9100 no-ports
prime-snapshot-writer compose/Dockerfile healthz prime-migrate,topic-init --metrics-port 9100 no-ports
prime-audit-writer compose/Dockerfile healthz prime-migrate,topic-init --metrics-port 9100 no-ports
prime-analyzer compose/Dockerfile healthz prime-migrate,topic-init --metrics-port 9100 no-ports"
got=$(facts "$tmp/.env.yml")
want="$expected_workers
topic-init prime-topics partitions 12 rf 1 min.insync.replicas=1
brokers kafka:9092
kafka-1 apache/kafka:4.1.0 2 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
[ "$got" = "$want" ] && ok "one broker: workers from the one image, health-checked, after the jobs; RF 1; ports on loopback" \
  || bad "compose with .env: expected [$want], got [$got]"
got=$(facts "$tmp/ha.env.yml")
want="$expected_workers
topic-init prime-topics partitions 12 rf 3 min.insync.replicas=2
brokers kafka-1:9092,kafka-2:9092,kafka-3:9092
kafka-1 apache/kafka:4.1.0 2 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
[ "$got" = "$want" ] && ok "three brokers (ha.env): replication factor 3, min.insync.replicas=2, all three as bootstrap" \
  || bad "compose with ha.env: expected [$want], got [$got]"

if docker info >/dev/null 2>&1; then
  echo "# a Docker engine is here: run compose/e2e.sh for the deployment itself"
else
  "$src/compose/e2e.sh" >"$tmp/e2e.out" 2>&1
  rc=$?
  [ "$rc" = 77 ] && grep -q "no Docker engine here" "$tmp/e2e.out" && ok "compose/e2e.sh without an engine: says so, exits 77" \
    || bad "compose/e2e.sh without an engine: exit $rc, said: $(cat "$tmp/e2e.out")"
fi
finish
