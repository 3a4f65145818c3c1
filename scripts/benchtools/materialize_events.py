#!/usr/bin/python3
"""The materialize benchmark's workload: N events of a studio's day.

Usage: materialize_events.py N EVENTS.jsonl TOUCHES.tsv

Per user, in time order: registration, a device, logins, profile edits;
two projects created and saved with ~3 KB of project_data each time and
opened; four editing sessions of one join, 60 heartbeats and a leave; ten
Mixx Recall preferences set and used 150 times; ten uploads and their
analyses; five presets used 20 times. Users are interleaved by time and the
stream is cut at N events, so every parent comes before its children.

TOUCHES.tsv has one line per event, "table<TAB>id" of the row it changes:
the per-event upsert baseline writes that row once per event.
Deterministic: the same N gives the same bytes.
"""
import json
import random
import sys
import uuid

RECALL_NAMESPACE = uuid.UUID("f599dc62-f662-5188-baed-487f0b1131f6")
BASE_US = 1_795_608_000_000_000  # 2026-11-25T00:00:00Z
EVENTS_PER_USER = 489

rng = random.Random(20261125)


def new_id():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uuid7(micros):
    """A UUIDv7 (RFC 9562) for an event at micros: what libprime_producer
    gives events that have none. Time-ordered, as event ids usually are."""
    value = (micros // 1000) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def project_data(version):
    tracks = [{"name": "Track %d" % t, "gain_db": round(rng.uniform(-12, 3), 2), "pan": round(rng.uniform(-1, 1), 2),
               "muted": t % 7 == 0, "clips": [{"start": c * 4.0, "length": 4.0, "file": "clip-%d-%d.wav" % (t, c)}
                                              for c in range(3)],
               "plugins": [{"type": "MixxDrive", "drive": round(rng.random(), 3)},
                           {"type": "MixxEQ", "bands": [round(rng.uniform(-6, 6), 1) for _ in range(4)]}]}
              for t in range(8)]
    return {"version": version, "tempo": 140, "tracks": tracks}


def user_events(u):
    """(time_us, type, owner, fields, table, id) of one user, in order."""
    owner = new_id()
    t0 = BASE_US + u * 7_000_000
    out = []
    clock = [t0]

    def add(kind, fields, table, row_id, step=1_000_000):
        clock[0] += step
        out.append((clock[0], kind, owner, fields, table, row_id))

    add("user.registered", {"email": "user%d@example.com" % u, "username": "user_%d" % u,
                            "display_name": "User %d" % u, "preferred_genres": ["trap", "house"],
                            "email_verified": False}, "prime_users", owner)
    add("user.device_registered", {"registered_device_id": "mac-%d" % u, "device_name": "Studio Mac",
                                   "device_type": "desktop"}, "prime_users", owner)
    for _ in range(5):
        add("user.logged_in", {"credential_id": None}, "prime_users", owner)
    for _ in range(3):
        add("user.profile_updated", {"bio": "Producer %d" % rng.randrange(1000)}, "prime_users", owner)
    projects = []
    for p in range(2):
        pid = new_id()
        projects.append(pid)
        add("project.created", {"project_id": pid, "name": "Project %d.%d" % (u, p), "bpm": 140,
                                "project_data": project_data(1)}, "studio_projects", pid)
        for v in range(1, 8):
            add("project.saved", {"project_id": pid, "base_version": v, "project_data": project_data(v + 1)},
                "studio_projects", pid)
        for _ in range(5):
            add("project.opened", {"project_id": pid}, "studio_projects", pid)
    for s in range(4):
        sid = new_id()
        token = "sha256:" + uuid.uuid5(RECALL_NAMESPACE, sid).hex * 2
        add("session.joined", {"session_id": sid, "project_id": projects[s % 2], "session_token_hash": token},
            "session_states", sid)
        for h in range(60):
            add("session.heartbeat", {"session_id": sid, "cursor_position": h * 0.5, "active_tool": "pencil"},
                "session_states", sid, 5_000_000)
        add("session.left", {"session_id": sid}, "session_states", sid)
    keys = [("plugin", "MixxDrive%d" % k) if k % 2 else ("workflow", "macro%d" % k) for k in range(10)]
    recall_ids = [str(uuid.uuid5(RECALL_NAMESPACE, "%s\n%s\n%s" % (owner, c, k))) for c, k in keys]
    for k, (c, key) in enumerate(keys):
        add("recall.set", {"category": c, "recall_key": key, "data": {"drive": 0.5, "mix": 1}, "confidence": 0.5},
            "mixx_recall", recall_ids[k])
    for i in range(150):
        k = rng.randrange(10)
        add("recall.used", {"category": keys[k][0], "recall_key": keys[k][1], "data": {"drive": round(rng.random(), 2)}},
            "mixx_recall", recall_ids[k])
    for f in range(10):
        fid = new_id()
        add("audio.file_uploaded", {"file_id": fid, "project_id": projects[f % 2], "filename": "take%d.wav" % f,
                                    "file_path": "%s/take%d.wav" % (owner, f), "file_size_bytes": 52_920_044,
                                    "mime_type": "audio/wav", "duration_seconds": 300.0, "sample_rate": 44100,
                                    "bit_depth": 24, "channels": 2, "format": "wav", "tags": ["take"],
                                    "is_mix": False}, "audio_files", fid)
        add("audio.analyzed", {"file_id": fid, "request_event_id": new_id(), "analyzer_version": "1.0.0",
                               "audio_analysis": {"integrated_lufs": -14.2, "lra": 6.1, "true_peak_dbtp": -1.0},
                               "duration_seconds": 300.0, "sample_rate": 44100, "channels": 2,
                               "integrated_lufs": -14.2, "dynamic_range": 8.0}, "audio_files", fid)
    presets = []
    for k in range(5):
        prid = new_id()
        presets.append(prid)
        add("preset.created", {"preset_id": prid, "name": "Preset %d" % k, "plugin_type": "MixxDrive",
                               "parameters": {"drive": 0.4, "tone": 0.6}, "is_public": k == 0,
                               "is_system_preset": False, "tags": ["warm"]}, "plugin_presets", prid)
    for _ in range(20):
        prid = presets[rng.randrange(5)]
        add("preset.used", {"preset_id": prid}, "plugin_presets", prid)
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    users = n // EVENTS_PER_USER + 1
    events = []
    for u in range(users):
        events.extend(user_events(u))
    events.sort(key=lambda e: e[0])
    with open(sys.argv[2], "w") as out, open(sys.argv[3], "w") as touches:
        for when, kind, owner, fields, table, row_id in events[:n]:
            line = {"type": kind, "event_id": uuid7(when), "occurred_at": when, "actor_user_id": owner,
                    "owner_user_id": owner, "device_id": "mac"}
            line.update(fields)
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            touches.write("%s\t%s\n" % (table, row_id))


if __name__ == "__main__":
    main()
