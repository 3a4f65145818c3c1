"""Interoperability with an independent Avro implementation (Debian's
python3-avro), both ways, for every event type:

  - python-avro decodes the bodies prime-codec encodes, to the same values;
  - prime-codec decodes single-object messages whose body python-avro wrote;
  - python-avro's Parsing Canonical Form equals ours.

python-avro 1.11.1 keeps {"type": "string"} for a primitive that has a
logicalType, where the specification's [PRIMITIVES] and [STRIP] rules (and
Java's SchemaNormalization) give "string"; logical types are removed before
asking it for the canonical form, so the comparison is of the rule both
implement alike. Run by ctest with /usr/bin/python3 (Debian's modules).
"""
import io
import json
import os
import subprocess
import sys

import avro.io
import avro.schema

from prime_avro import micros, strip_logical

CODEC = os.environ["PRIME_CODEC"]
JSON_FIELDS_CHECKS = {"json", "json_object", "json_array"}


def codec(*args, data=None):
    return subprocess.run([CODEC, *args], input=data, capture_output=True, check=True).stdout


def to_avro_datum(event, schema_json):
    """Our JSON form -> the plain values python-avro writes."""
    datum = {}
    for field in schema_json["fields"]:
        name = field["name"]
        value = event["type"] if name == "event_type" else event[name]
        if field.get("prime.check") in JSON_FIELDS_CHECKS and value is not None and not isinstance(value, str):
            value = json.dumps(value, separators=(",", ":"))
        datum[name] = value
    return datum


def main():
    passed = failed = 0
    lines = codec("list").decode().splitlines()
    for line in lines:
        etype, _topic, fingerprint = line.split()
        schema_json = json.loads(codec("schema", etype))  # the newest version
        plain = avro.schema.parse(json.dumps(strip_logical(schema_json)))
        ours_pcf = codec("canonical", etype).decode().strip()
        problems = []
        if plain.canonical_form != ours_pcf:
            problems.append("canonical form differs: %s" % plain.canonical_form)
        for seed in range(6):
            example = codec("example", etype, str(seed))
            event = json.loads(example)
            message = codec("encode", data=example)
            if message[:2] != b"\xc3\x01" or message[2:10] != bytes.fromhex(fingerprint)[::-1]:
                problems.append("seed %d: header is not C3 01 + fingerprint" % seed)
            theirs = avro.io.DatumReader(plain).read(avro.io.BinaryDecoder(io.BytesIO(message[10:])))
            # Python writes the same datum; our decoder must read it back.
            buf = io.BytesIO()
            avro.io.DatumWriter(plain).write(theirs, avro.io.BinaryEncoder(buf))
            if buf.getvalue() != message[10:]:
                problems.append("seed %d: python re-encodes different bytes" % seed)
            back = json.loads(codec("decode", data=message[:10] + buf.getvalue()))
            if back != event:
                problems.append("seed %d: prime-codec decodes python's bytes differently" % seed)
            datum = to_avro_datum(event, schema_json)
            for name, value in theirs.items():
                ours = datum[name]
                if isinstance(ours, str) and isinstance(value, int):
                    ours = micros(ours)  # a timestamp, checked by an independent parser
                if ours != value:
                    problems.append("seed %d: %s: ours %r, python %r" % (seed, name, datum[name], value))
        if problems:
            failed += 1
            print("FAIL", etype, *problems[:5], sep="\n  ")
        else:
            passed += 1
            print("ok  ", etype)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed < 41 else 0


if __name__ == "__main__":
    sys.exit(main())
