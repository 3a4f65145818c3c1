#!/usr/bin/env bash
# prime-topics on the real broker of tests/with-stack --kafka-real (which
# made the topics with it): clear usage errors; a second run leaves every
# topic as it is and exits 0; the topics are kept forever, as Kafka itself
# (its ConfigCommand) reports them; a cluster that does not answer is a
# failure naming it, within --wait.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
topics=${PRIME_TOPICS:?} brokers=${PRIME_TEST_BROKERS:?}
# Every topic the schemas name, and prime.dlq.
count=$(( $("${PRIME_CODEC:?}" list | awk '{ print $2 }' | sort -u | wc -l) + 1 ))

usage_error() { # NAME PATTERN ARG...: exit 2 and a message matching PATTERN
  local name=$1 pattern=$2 rc
  shift 2
  "$topics" "$@" >/dev/null 2>"$tmp/err"; rc=$?
  [ "$rc" = 2 ] && grep -qE -- "$pattern" "$tmp/err" && ok "$name" || bad "$name: exit $rc, said: $(cat "$tmp/err")"
}
usage_error "--partitions 0 refused" "--partitions: expected an integer from 1 to 10000, got '0'" -b "$brokers" --partitions 0
usage_error "--config needs key=value" "--config expects key=value, got 'nonsense'" -b "$brokers" --config nonsense
usage_error "no brokers" "no brokers: give -b BROKERS" -b ""

"$topics" -b "$brokers" --partitions 4 >"$tmp/again" 2>&1
rc=$?
[ "$rc" = 0 ] && [ "$(grep -c ' exists$' "$tmp/again")" = "$count" ] && [ "$(wc -l <"$tmp/again")" = "$count" ] &&
  ok "a second run finds the $count topics and changes nothing" || bad "second run (exit $rc): $(cat "$tmp/again")"
partitions=$(kcat -b "$brokers" -L -t prime.projects 2>/dev/null | grep -c 'partition [0-9]')
[ "$partitions" = 4 ] && ok "prime.projects has 4 partitions" || bad "prime.projects partitions: $partitions"

java -cp "${PRIME_TEST_KAFKA_HOME:?}/libs/*" kafka.admin.ConfigCommand --bootstrap-server "$brokers" \
  --entity-type topics --entity-name prime.audit --describe >"$tmp/config" 2>/dev/null
grep -q '^  retention.ms=-1 ' "$tmp/config" && grep -q '^  retention.bytes=-1 ' "$tmp/config" &&
  ok "prime.audit is kept forever (Kafka's ConfigCommand: retention.ms=-1, retention.bytes=-1)" || bad "config: $(cat "$tmp/config")"

"$topics" -b 127.0.0.1:1 --wait 2 >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] && grep -q "$count topic(s) not created within 2 s: is the cluster at 127.0.0.1:1 up" "$tmp/err" &&
  ok "no cluster: exit 1 within --wait, naming it" || bad "no cluster: exit $rc: $(tail -1 "$tmp/err")"
finish
