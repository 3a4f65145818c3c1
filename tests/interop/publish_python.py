"""prime-publish, read back by an independent client: python3-confluent-kafka
consumes every topic, python3-avro decodes each message body with the schema
its fingerprint names, and every field must equal the JSON line that was
published (timestamps compared as microseconds, JSON fields as parsed JSON).
Key and headers are checked too. Runs under tests/with-stack --broker.
"""
import io
import json
import os
import subprocess
import sys
import time

import avro.io
import avro.schema

from prime_avro import micros, strip_logical
from confluent_kafka import Consumer

CODEC, PUBLISH = os.environ["PRIME_CODEC"], os.environ["PRIME_PUBLISH"]
BROKERS = os.environ["PRIME_TEST_BROKERS"]
SEEDS = 4


def main():
    by_fingerprint, topics = {}, set()
    for line in subprocess.check_output([CODEC, "list"], text=True).splitlines():
        etype, topic, fingerprint = line.split()
        raw = json.loads(subprocess.check_output([CODEC, "schema", etype]))  # the newest version
        by_fingerprint[bytes.fromhex(fingerprint)[::-1]] = (etype, raw, avro.schema.parse(json.dumps(strip_logical(raw))))
        topics.add(topic)

    lines = []
    for etype, _raw, _schema in by_fingerprint.values():
        for seed in range(SEEDS):
            lines.append(subprocess.check_output([CODEC, "example", etype, str(seed)], text=True).strip())
    sent = {json.loads(l)["event_id"]: json.loads(l) for l in lines}
    run = subprocess.run([PUBLISH, "-b", BROKERS], input="\n".join(lines) + "\n", text=True, capture_output=True)
    print(run.stderr.strip().splitlines()[-1])
    if run.returncode != 0:
        print("prime-publish failed:", run.stderr)
        return 1

    consumer = Consumer({"bootstrap.servers": BROKERS, "group.id": "interop-%d" % os.getpid(),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(sorted(topics))
    problems, seen, deadline = [], set(), time.time() + 60
    while len(seen) < len(sent) and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        value = msg.value()
        if value[:2] != b"\xc3\x01" or value[2:10] not in by_fingerprint:
            problems.append("%s: not single-object encoded with a known fingerprint" % msg.topic())
            continue
        etype, raw, schema = by_fingerprint[value[2:10]]
        datum = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))
        original = sent.get(datum["event_id"])
        if original is None:
            problems.append("unexpected event %s" % datum["event_id"])
            continue
        seen.add(datum["event_id"])
        headers = dict(msg.headers() or [])
        if headers.get("prime.event_type") != etype.encode() or headers.get("prime.fingerprint") != value[2:10][::-1].hex().encode():
            problems.append("%s: headers %r" % (etype, headers))
        if msg.key() != original["owner_user_id"].encode():
            problems.append("%s: key %r is not the owner" % (etype, msg.key()))
        for field in raw["fields"]:
            name, got = field["name"], datum[field["name"]]
            want = original["type"] if name == "event_type" else original[name]
            if isinstance(want, str) and isinstance(got, int):
                want = micros(want)
            elif field.get("prime.check", "").startswith("json") and got is not None:
                got = json.loads(got)
            if want != got:
                problems.append("%s.%s: published %r, read %r" % (etype, name, want, got))
    consumer.close()
    missing = len(sent) - len(seen)
    for p in problems[:20]:
        print("FAIL", p)
    print("%d events of %d types read back by confluent-kafka + python-avro; %d missing, %d problems"
          % (len(seen), len(by_fingerprint), missing, len(problems)))
    ok = not problems and not missing
    print("%d passed, %d failed" % (len(seen) if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
