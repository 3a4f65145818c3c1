"""What both interop checks need to read our events with python-avro."""
import datetime


def strip_logical(node):
    """The schema without logicalType annotations. python-avro 1.11.1 keeps
    {"type": "string"} for an annotated primitive in its canonical form where
    the specification gives "string"; without annotations both agree."""
    if isinstance(node, dict):
        return {k: strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [strip_logical(v) for v in node]
    return node


def micros(rfc3339):
    """An RFC 3339 time (as prime-codec prints it) as microseconds since the epoch."""
    when = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    delta = when - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds
