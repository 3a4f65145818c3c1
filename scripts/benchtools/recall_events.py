#!/usr/bin/python3
"""The recall benchmark's workload: N events of U users, what Mixx Recall learns from.

Usage: recall_events.py N U EVENTS.jsonl

Per user, in time order (101 events): registration, a device, five logins;
two projects created (genre, BPM, key, time signature, sample rate), saved
seven times each, and their metadata edited once; three presets created and
used fifteen times; a mix and a take uploaded and analysed; three Mixx
Recall preferences set, fifty explicit uses, one forgotten. Users are
interleaved by time and the stream is cut at N, so every parent comes before
its children. Prints the number of events on prime-recall's topics.
Deterministic: the same N and U give the same bytes.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from materialize_events import BASE_US, new_id, rng, uuid7  # noqa: E402

GENRES = ["trap", "house", "drill", "techno", "lofi", "pop"]
KEYS = ["C#m", "F#m", "Am", "Gm", "D", "Eb"]
PLUGINS = ["MixxDrive", "MixxEQ", "MixxComp", "MixxTune"]


def on_recall_topic(kind):
    # prime.recall, prime.projects, prime.presets, prime.users, and
    # prime.audio and prime.analysis (every audio.* event is on one of them)
    return kind.split(".")[0] in ("recall", "project", "preset", "user", "audio")


def user_events(u):
    owner = new_id()
    clock = [BASE_US + u * 1_000_000]
    out = []

    def add(kind, fields, step=10_000_000):
        clock[0] += step
        out.append((clock[0], kind, owner, fields))

    add("user.registered", {"email": "user%d@example.com" % u, "username": "user_%d" % u,
                            "display_name": "User %d" % u, "preferred_genres": [], "email_verified": False})
    add("user.device_registered", {"registered_device_id": "mac", "device_name": "Studio Mac", "device_type": "desktop"})
    for _ in range(5):
        add("user.logged_in", {"credential_id": None})
    projects = []
    for p in range(2):
        pid = new_id()
        projects.append(pid)
        add("project.created", {"project_id": pid, "name": "Project %d.%d" % (u, p),
                                "genre": rng.choice(GENRES), "bpm": rng.choice([85, 120, 128, 140, 140.5, 150]),
                                "key": rng.choice(KEYS), "time_signature": "4/4", "sample_rate": 48000,
                                "project_data": {"v": 1}})
        for v in range(1, 8):
            add("project.saved", {"project_id": pid, "base_version": v, "project_data": {"v": v + 1}})
        add("project.metadata_updated", {"project_id": pid, "bpm": rng.choice([120, 140, 142]), "cleared_fields": []})
    presets = []
    for k in range(3):
        prid = new_id()
        presets.append(prid)
        add("preset.created", {"preset_id": prid, "name": "Preset %d" % k, "plugin_type": PLUGINS[k],
                               "parameters": {"drive": round(rng.random(), 2), "mix": 1}, "is_public": False,
                               "is_system_preset": False, "tags": []})
    for _ in range(15):
        add("preset.used", {"preset_id": rng.choice(presets)})
    for f, is_mix in enumerate((True, False)):
        fid = new_id()
        add("audio.file_uploaded", {"file_id": fid, "project_id": projects[0], "filename": "f%d.wav" % f,
                                    "file_path": "%s/f%d.wav" % (owner, f), "file_size_bytes": 52_920_044,
                                    "mime_type": "audio/wav", "duration_seconds": 300.0, "sample_rate": 44100,
                                    "bit_depth": 24, "channels": 2, "format": "wav", "tags": [], "is_mix": is_mix})
        lufs = round(rng.uniform(-16, -8), 1)
        add("audio.analyzed", {"file_id": fid, "request_event_id": new_id(), "analyzer_version": "1.0.0",
                               "audio_analysis": {"loudness": {"integrated_lufs": lufs, "loudness_range_lu": 6.1}},
                               "duration_seconds": 300.0, "sample_rate": 44100, "channels": 2,
                               "integrated_lufs": lufs, "dynamic_range": 8.0})
    keys = [("plugin", "MixxDrive"), ("workflow", "bounce"), ("genre", "favourite")]
    for c, key in keys:
        add("recall.set", {"category": c, "recall_key": key, "data": {"note": "set"}, "confidence": 0.4})
    for _ in range(50):
        c, key = rng.choice(keys + [("plugin", "MixxVerb"), ("workflow", "export")])
        add("recall.used", {"category": c, "recall_key": key, "data": {"amount": rng.randrange(4)}})
    add("recall.forgotten", {"category": "genre", "recall_key": "favourite"})
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    n, users = int(sys.argv[1]), int(sys.argv[2])
    events = []
    for u in range(users):
        events.extend(user_events(u))
    events.sort(key=lambda e: e[0])
    recall = 0
    with open(sys.argv[3], "w") as out:
        for when, kind, owner, fields in events[:n]:
            line = {"type": kind, "event_id": uuid7(when), "occurred_at": when, "actor_user_id": owner,
                    "owner_user_id": owner, "device_id": "mac"}
            line.update(fields)
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            recall += on_recall_topic(kind)
    print(recall)


if __name__ == "__main__":
    main()
