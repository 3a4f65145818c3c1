#!/usr/bin/env bash
# Issue 12, item 6: adding materializer instances to the group never changes
# the result. On a real Kafka broker (the dev broker's group coordinator is
# not Kafka's), a workload whose rows are shared across owners and
# partitions (public presets used by every user; each project saved by its
# owner on prime.projects while its mix's analyses arrive on prime.analysis;
# collaborations joined by other users) is published in chunks, and
#   - database A gets it from ONE materializer;
#   - database B from instances of the same group started at different
#     moments, one stopped with SIGTERM, one more started, one killed with
#     kill -9, each stop landing after that instance committed progress
#     (its prime_records_consumed_total moved, asserted);
# then prime-verify compares A and B (exit 0: the same tables), the
# counters are checked against the events, and the logs must show
# partitions that moved between instances (the rebalances happened).
set -uo pipefail
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS
db_a=$PRIME_TEST_DB db_b="$PRIME_TEST_DB dbname=prime_b"
psql -qc "CREATE DATABASE prime_b" >/dev/null || exit 1
"$PRIME_MIGRATE" --db "$db_a" >/dev/null && "$PRIME_MIGRATE" --db "$db_b" >/dev/null || { bad "prime-migrate"; finish; exit 1; }

# --- the workload -----------------------------------------------------------------------
users=24 presets=4 saves=25
uid() { printf '%08x-0000-4000-8000-%012x' "$1" "$2"; } # KIND N
uid_to() { printf -v "$1" '%08x-0000-4000-8000-%012x' "$2" "$3"; } # VAR KIND N: uid without a subshell
user=1 project=2 mix=3 preset=4 collab=5 session=6 stem=7 auth=8
hash() { printf '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo%011d' "$1"; } # N: a distinct one
n=0
ev() { # TYPE ACTOR OWNER FIELDS: one event, a second after the one before
  local at id
  n=$((n + 1))
  uid_to id 99 "$n"
  # bash's own strftime: date(1) for each of the 3,676 events took 15 s.
  TZ=UTC0 printf -v at '%(%FT%TZ)T' $((1795000000 + n))
  printf '{"type":"%s","event_id":"%s","occurred_at":"%s","actor_user_id":"%s","owner_user_id":"%s","device_id":"d",%s}\n' \
    "$1" "$id" "$at" "$2" "$3" "$4"
}
chunks=6
{ # chunk 1: the users, their projects and mixes, the public presets
  for i in $(seq 0 $((users - 1))); do
    u=$(uid $user "$i")
    ev user.registered "$u" "$u" "\"email\":\"u$i@example.com\",\"username\":\"user$i\",\"display_name\":\"U$i\",\"preferred_genres\":[],\"email_verified\":false"
    ev project.created "$u" "$u" "\"project_id\":\"$(uid $project "$i")\",\"name\":\"P$i\",\"project_data\":{\"v\":1}"
    ev audio.file_uploaded "$u" "$u" "\"file_id\":\"$(uid $mix "$i")\",\"project_id\":\"$(uid $project "$i")\",\"filename\":\"mix.wav\",\"file_path\":\"users/$u/mix.wav\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":12.0,\"sample_rate\":48000,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\",\"is_mix\":true"
  done
  for k in $(seq 0 $((presets - 1))); do
    u=$(uid $user "$k")
    ev preset.created "$u" "$u" "\"preset_id\":\"$(uid $preset "$k")\",\"name\":\"Preset $k\",\"plugin_type\":\"eq\",\"parameters\":{\"k\":$k},\"is_public\":true,\"is_system_preset\":false,\"tags\":[]"
  done
} >"$tmp/chunk1.jsonl"
# chunks 2..6: saves and analyses of the same project rows, uses of the shared
# presets by everyone, collaborations joined by the next two users.
per=$((saves / (chunks - 1)))
for c in $(seq 2 $chunks); do {
  for r in $(seq 1 $per); do
    v=$(((c - 2) * per + r))
    for i in $(seq 0 $((users - 1))); do
      uid_to u $user "$i"
      uid_to proj_id $project "$i"
      uid_to mix_id $mix "$i"
      ev project.saved "$u" "$u" "\"project_id\":\"$proj_id\",\"base_version\":$v,\"project_data\":{\"v\":$((v + 1))}"
      uid_to req_id 98 "$n"
      ev audio.analyzed "$u" "$u" "\"file_id\":\"$mix_id\",\"request_event_id\":\"$req_id\",\"analyzer_version\":\"1.0.$v\",\"audio_analysis\":{\"pass\":$v},\"duration_seconds\":12,\"sample_rate\":48000,\"channels\":2,\"integrated_lufs\":-$((10 + (v + i) % 20)).5,\"dynamic_range\":$(((v * 7 + i) % 20)).25"
      for k in $(seq 0 $((presets - 1))); do
        uid_to preset_id $preset "$k"
        [ $(((r + k + i) % 2)) = 0 ] && ev preset.used "$u" "$u" "\"preset_id\":\"$preset_id\""
      done
    done
  done
  # Every topic in every chunk, so that whichever partitions an instance
  # gets, it has records to commit.
  for i in $(seq 0 $((users - 1))); do
    u=$(uid $user "$i") k=$((c * 100 + i))
    ev user.logged_in "$u" "$u" '"credential_id":null'
    ev recall.used "$u" "$u" "\"category\":\"eq\",\"recall_key\":\"k$((k % 3))\",\"data\":{\"c\":$c}"
    ev session.joined "$u" "$u" "\"session_id\":\"$(uid $session "$k")\",\"project_id\":\"$(uid $project "$i")\",\"session_token_hash\":\"$(hash "$k")\",\"cursor_position\":0"
    ev session.heartbeat "$u" "$u" "\"session_id\":\"$(uid $session "$k")\",\"cursor_position\":$c.5"
    ev audio.stem_uploaded "$u" "$u" "\"file_id\":\"$(uid $stem "$k")\",\"project_id\":\"$(uid $project "$i")\",\"filename\":\"s.wav\",\"file_path\":\"users/$u/s$c.wav\",\"file_size_bytes\":10,\"mime_type\":\"audio/wav\",\"duration_seconds\":12.0,\"sample_rate\":48000,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\",\"tags\":[],\"stem_type\":\"drums\",\"parent_file_id\":\"$(uid $mix "$i")\""
    ev auth.session_started "$u" "$u" "\"session_id\":\"$(uid $auth "$k")\",\"session_token_hash\":\"$(hash $((k + 10000)))\",\"device_name\":\"mac\",\"device_type\":\"desktop\",\"access_token_hash\":\"$(hash $((k + 20000)))\",\"refresh_token_hash\":\"$(hash $((k + 30000)))\",\"access_token_expires_at\":\"2027-01-01T00:00:00Z\",\"refresh_token_expires_at\":\"2027-02-01T00:00:00Z\""
  done
  for i in $(seq 0 $((users - 1))); do
    u=$(uid $user "$i") s=$(uid $collab $((c * 100 + i)))
    ev collab.started "$u" "$u" "\"collab_session_id\":\"$s\",\"project_id\":\"$(uid $project "$i")\",\"session_name\":\"S$c\""
    for j in 1 2; do
      g=$(uid $user $(((i + j) % users)))
      ev collab.participant_joined "$g" "$u" "\"collab_session_id\":\"$s\",\"user_id\":\"$g\",\"role\":\"editor\""
    done
    ev collab.participant_left "$(uid $user $(((i + 1) % users)))" "$u" "\"collab_session_id\":\"$s\",\"user_id\":\"$(uid $user $(((i + 1) % users)))\""
  done
} >"$tmp/part.$((c - 2))"; done
cat "$tmp"/part.? >"$tmp/rest.jsonl"
used=$(grep -c '"preset.used"' "$tmp/rest.jsonl")
total=$(cat "$tmp/chunk1.jsonl" "$tmp/rest.jsonl" | grep -c .)
echo "# $total events: $used preset.used of $presets public presets by $users users, $saves saves and analyses a project"

published=0
publish() {
  "$PRIME_PUBLISH" "$1" >"$tmp/publish.log" 2>&1 || { cat "$tmp/publish.log"; bad "publishing $1"; finish; exit 1; }
  published=$((published + $(grep -c . "$1")))
}
consumed() { psql -d "$1" -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'scale'"; }
committed() { # INSTANCE: records it committed, from its /metrics (-1 when it does not answer)
  curl -fsS "http://127.0.0.1:${port[$1]}/metrics" 2>/dev/null |
    awk '/^prime_records_consumed_total/ {print $2; found=1} END {if (!found) print -1}'
}
wait_until() { # NAME SECONDS CONDITION...
  local name=$1 tries=$(($2 * 10))
  shift 2
  while [ "$tries" -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  bad "$name: not within the time allowed"
  tail -n 5 "$tmp"/m*.log
  finish
  exit 1
}
declare -A port pid
start() { # INSTANCE DB: started (again on another port when its metrics port was taken meanwhile)
  local try i
  for try in 1 2 3; do
    port[$1]=$(free_port)
    "$PRIME_MATERIALIZER" --db "$2" --group scale --batch-max 50 --linger-ms 50 --metrics-port "${port[$1]}" \
      "${group_x[@]}" >"$tmp/$1.log" 2>&1 &
    pid[$1]=$!
    pids+=($!)
    for i in $(seq 100); do
      grep -q 'msg="started"' "$tmp/$1.log" && return 0
      kill -0 "${pid[$1]}" 2>/dev/null || break
      sleep 0.1
    done
    grep -q 'msg="cannot serve metrics"' "$tmp/$1.log" || return 0 # what else happened, the test sees
  done
}
moved_past() { [ "$(committed "$1")" -gt "$2" ]; }
drained() { [ "$(consumed "$1")" -ge "$published" ]; }
# Stops INSTANCE with SIGNAL once it has committed records since the last
# look, and asserts that it had.
stop_after_progress() { # INSTANCE SIGNAL
  local before=${seen[$1]:-0} after
  wait_until "$1 commits progress before its $2" 60 moved_past "$1" "$before"
  after=$(committed "$1")
  kill -"$2" "${pid[$1]}"
  wait "${pid[$1]}" 2>/dev/null
  [ "$after" -gt "$before" ] && ok "$1 got $2 after committing $((after - before)) more records" ||
    bad "$1 got $2 without progress"
}
declare -A seen
mark() { seen[$1]=$(committed "$1"); }

# --- database B: instances come and go while the chunks arrive --------------------------
assigned() { has_partitions "$tmp/$1.log"; }
join() { # INSTANCE CHUNK: starts it; once it has partitions, the chunk is published; it must commit some
  start "$1" "$db_b"
  wait_until "$1 is assigned partitions" 60 assigned "$1"
  publish "$2"
  wait_until "$1 commits records of partitions that moved to it" 60 moved_past "$1" 0
  mark "$1"
}
publish "$tmp/chunk1.jsonl"
start m1 "$db_b"
wait_until "m1 commits" 60 moved_past m1 0
mark m1
join m2 "$tmp/part.0"
join m3 "$tmp/part.1"
publish "$tmp/part.2"
stop_after_progress m1 TERM
join m4 "$tmp/part.3"
stop_after_progress m2 KILL
publish "$tmp/part.4"
wait_until "B takes in all $published records" 90 drained "$db_b"
for m in m3 m4; do kill -TERM "${pid[$m]}"; wait "${pid[$m]}" 2>/dev/null; done

# --- database A: one instance, the same topics ----------------------------------------------
port[one]=$(free_port)
start one "$db_a"
wait_until "A takes in all $published records" 90 drained "$db_a"
kill -TERM "${pid[one]}"
wait "${pid[one]}" 2>/dev/null

# --- the rebalances were real ----------------------------------------------------------------
for m in m1 m2 m3 m4; do
  a=$(grep -c 'partition assigned' "$tmp/$m.log")
  [ "$a" -gt 0 ] && ok "$m was assigned $a partitions over the run" || bad "$m was never assigned a partition"
done
moved=$(for m in m1 m2 m3 m4; do
          sed -n 's/.*partition assigned.* topic=\([^ ]*\) partition=\([0-9]*\).*/\1:\2/p' "$tmp/$m.log" | sort -u | sed "s/^/$m /"
        done | awk '{print $2}' | sort | uniq -d | wc -l)
[ "$moved" -gt 0 ] && ok "$moved partitions moved from one instance to another" || bad "no partition moved between instances"
retries=$(cat "$tmp"/m?.log | grep -c 'batch abandoned' || true)
echo "# batches consumed again in B (deadlocks, rows created meanwhile, fences): $retries"

# --- the same tables --------------------------------------------------------------------------
if "$PRIME_VERIFY" --diff=5 "$db_a" "$db_b" >"$tmp/verify.out" 2>&1; then
  ok "three instances with rebalances give the same tables as one (prime-verify)"
else
  bad "the tables differ: $(head -n 20 "$tmp/verify.out")"
fi
lost=0
for d in a b; do
  db=$db_a
  [ $d = b ] && db=$db_b
  got=$(psql -d "$db" -qAtc "SELECT coalesce(sum(usage_count), 0) FROM plugin_presets")
  [ $d = b ] && lost=$((lost + used - got))
  [ "$got" = "$used" ] && ok "$d: every preset.used counted ($used)" || bad "$d: $got of $used preset uses counted ($((used - got)) lost)"
  got=$(psql -d "$db" -qAtc "SELECT count(*) FROM studio_projects WHERE project_version = $((saves + 1)) AND current_lufs IS NOT NULL")
  [ $d = b ] && lost=$((lost + users - got))
  [ "$got" = "$users" ] && ok "$d: every project at version $((saves + 1)) with its mix's loudness" ||
    bad "$d: $got of $users projects have every save and their loudness"
  got=$(psql -d "$db" -qAtc "SELECT count(*) FROM prime_pipeline.parked_events")
  [ $d = b ] && lost=$((lost + got))
  [ "$got" = 0 ] && ok "$d: nothing left parked" || bad "$d: $got events left parked"
done
# Figures: the instances' arrivals and departures in the middle of the work
# (three joins, a SIGTERM, a kill -9); lost in B: preset uses, saves or mix
# figures missing, events left parked.
attack_summary instances 5 "$lost" -
finish
