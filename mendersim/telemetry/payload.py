"""Telemetry messages on the wire: JSON (default) or a compact binary form, one stream a message.

JSON: `{"device": ID, "stream": NAME, "unit": U, "seq": N, "readings": [[ts, value], ...]}`.
Binary (big-endian): b"MS", version 1, then device id and stream name (each a byte length and
UTF-8), seq (uint32), a reading count (uint16), and per reading ts (float64) and value (float32).
`seq` counts a stream's messages per device so a consumer sees loss and duplicates.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote

MAGIC = b"MS"
VERSION = 1
_HEAD = struct.Struct("!2sB")
_SEQ = struct.Struct("!IH")
_READING = struct.Struct("!df")

Reading = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Message:
    device: str
    stream: str
    unit: str
    seq: int
    readings: tuple[Reading, ...]


def encode(message: Message, encoding: str) -> bytes:
    if encoding == "binary":
        return encode_binary(message)
    return encode_json(message)


def encode_json(message: Message) -> bytes:
    """What `json.dumps` writes for the message with compact separators, at a third of its cost:
    the shape is fixed, the strings go through json's own escaping, and readings are finite
    floats, which json writes as their repr."""
    readings = ",".join(f"[{round(ts, 3)!r},{round(v, 4)!r}]" for ts, v in message.readings)
    return (
        f'{{"device":{_quote(message.device)},"stream":{_quote(message.stream)},'
        f'"unit":{_quote(message.unit)},"seq":{message.seq},"readings":[{readings}]}}'
    ).encode()


def encode_binary(message: Message) -> bytes:
    device, stream = message.device.encode(), message.stream.encode()
    parts = [
        _HEAD.pack(MAGIC, VERSION),
        bytes([len(device)]),
        device,
        bytes([len(stream)]),
        stream,
        _SEQ.pack(message.seq, len(message.readings)),
    ]
    parts.extend(_READING.pack(ts, v) for ts, v in message.readings)
    return b"".join(parts)


def decode(data: bytes) -> Message:
    """Either form back into a Message (binary carries no unit); ValueError when malformed."""
    if data[:2] == MAGIC:
        return _decode_binary(data)
    try:
        doc = json.loads(data)
        readings: Sequence[Sequence[float]] = doc["readings"]
        return Message(
            doc["device"],
            doc["stream"],
            doc.get("unit", ""),
            int(doc["seq"]),
            tuple((float(ts), float(v)) for ts, v in readings),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a telemetry message: {exc}") from None


def _decode_binary(data: bytes) -> Message:
    try:
        _, version = _HEAD.unpack_from(data, 0)
        if version != VERSION:
            raise ValueError(f"binary version {version}")
        pos = _HEAD.size
        n = data[pos]
        device = data[pos + 1 : pos + 1 + n].decode()
        pos += 1 + n
        n = data[pos]
        stream = data[pos + 1 : pos + 1 + n].decode()
        pos += 1 + n
        seq, count = _SEQ.unpack_from(data, pos)
        pos += _SEQ.size
        readings = tuple(_READING.unpack_from(data, pos + i * _READING.size) for i in range(count))
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a telemetry message: {exc}") from None
    return Message(device, stream, "", seq, readings)
