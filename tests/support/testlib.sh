# Sourced by the shell tests: results counted, and the closing line ctest's
# output and CI read ("N passed, N failed").
# shellcheck shell=bash
passed=0 failed=0
# free_port and the other helpers the scripts share
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
# A query's result (psql, the PG* environment) against what it should be.
check() { # NAME EXPECTED SQL
  local got
  got=$(psql -qAtc "$3" 2>&1)
  if [ "$got" = "$2" ]; then ok "$1"; else bad "$1: expected [$2], got [$got]"; fi
}
# Records on a topic so far, from the beginning, all partitions ($PRIME_BROKERS).
on_topic() { kcat -b "$PRIME_BROKERS" -C -t "$1" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l; }
# Headers of the dead letters on prime.dlq so far, one record a line.
dead_letters() { kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h\n' 2>/dev/null; }
dead_lettered() { # NAME PATTERN: a dead letter's headers match the (extended) pattern
  if dead_letters | grep -qE "$2"; then ok "$1"; else bad "no dead letter for: $1"; fi
}
# The consumer-group settings (-X) of every worker a test starts. A worker
# killed or stopped holds its partitions until its session times out. The
# dev broker (librdkafka 2.0's mock cluster) elects a group's leader 3 s
# after the first member joins an empty group (fixed), and waits the session
# timeout less 1 s when a member joins a group that has members; a member
# whose session times out while it waits is dropped, so the session must be
# longer than the 3 s: 4 s. A kill's partitions then move in about 8 s, and a
# second member gets its share in 3 s (12 s and 5 s with 6 s sessions). A real
# broker takes it too (scripts/kafka-up: group.min.session.timeout.ms).
group_x=(-X session.timeout.ms=4000 -X heartbeat.interval.ms=500)
# A worker kept running between the sections of a test that run it with the
# same command (each start costs its group's join: 3 s on the dev broker);
# another command stops it (SIGTERM: a clean stop, exit status 0, asserted)
# and starts the new one. kept_pid is its process (for the test's EXIT trap).
kept_pid= kept_cmd=
keep_running() { # LOG CMD...: CMD runs from now on, its output appended to LOG
  local log=$1
  shift
  if [ -n "$kept_pid" ] && ! kill -0 "$kept_pid" 2>/dev/null; then # it was to run on
    wait "$kept_pid"
    bad "a kept worker exited with $? while it was to run on: ${kept_cmd:0:120}"
    kept_pid= kept_cmd=
  fi
  [ -n "$kept_pid" ] && [ "$kept_cmd" = "$*" ] && return 0
  stop_kept
  "$@" >>"$log" 2>&1 &
  kept_pid=$! kept_cmd="$*"
}
stop_kept() {
  [ -n "$kept_pid" ] || return 0
  kill -TERM "$kept_pid"
  wait "$kept_pid" || bad "a kept worker exited with $? on SIGTERM: ${kept_cmd:0:120}"
  kept_pid= kept_cmd=
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; }
# wait_until SECONDS CMD...: until CMD succeeds (polled every 0.1 s); fails
# after SECONDS. For conditions a test waits on, instead of a sleep.
wait_until() {
  local i tries=$(( $1 * 10 )); shift
  for ((i = 0; i < tries; i++)); do "$@" && return 0; sleep 0.1; done
  "$@"
}
# http_get PORT PATH: the status line and body of a GET on 127.0.0.1.
http_get() { curl -s -m 5 -w '\nstatus=%{http_code}\n' "http://127.0.0.1:$1$2" 2>/dev/null; }
# vm_hwm PID: the process's peak resident set (VmHWM), in kB.
vm_hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# A worker's log (logfmt, FILE): partitions it was assigned so far; whether any.
assigned_in() { grep -c 'msg="partition assigned"' "$1"; }
has_partitions() { [ "$(assigned_in "$1")" -gt 0 ]; }
# fence_refused FILE: the worker's log shows a commit refused by the fence
# (another worker committed one of its partitions since it read them).
fence_refused() { grep -q 'reason="the stored offset moved: another worker committed this partition"' "$1"; }
# metric_value PORT SERIES: the value of one series (name and labels, as
# printed) on the worker's /metrics; empty when there is none.
metric_value() { http_get "$1" /metrics | awk -v s="$2" '$1 == s {print $2}'; }
# The adversarial suite's figures (issue 12), one line a test, counted from
# what the run saw: "ATTACK NAME: tried=N lost=N secrets=N". tried: the
# hostile inputs sent; lost: records of the attack that came to nothing (not
# applied, not dead-lettered, not answered) or rows it destroyed; secrets:
# occurrences of the test's secret canaries where they must not be. "-"
# where the attack puts no row, or no secret, at stake.
attack_summary() { echo "ATTACK $1: tried=$2 lost=$3 secrets=$4"; }
# count_in TEXT FILE...: occurrences of the fixed TEXT in the files (binary too).
count_in() { local t=$1; shift; cat "$@" 2>/dev/null | grep -a -o -F -- "$t" | wc -l; }
