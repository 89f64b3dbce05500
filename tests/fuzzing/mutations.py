"""Seeded mutations of model files: bytes, protobuf wire fields, zip records and text.

Every mutator takes the bytes and a seeded ``random.Random`` and returns new bytes; the protobuf
ones walk the wire format themselves (no schema) and, where a field's size changes, rewrite the
length of every enclosing message so the file still parses and the edit reaches deeper code.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Mutator = Callable[[bytes, random.Random], bytes]

# -- generic byte mutations -------------------------------------------------------------------

_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def replace_bytes(data: bytes, rng: random.Random) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        value = rng.choice(_INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
        mutated[rng.randrange(len(mutated))] = value
    return bytes(mutated)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_run(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    run = rng.randbytes(rng.randint(1, 32)) if rng.random() < 0.5 else bytes(rng.randint(1, 32))
    return data[:at] + run + data[at:]


def delete_run(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 64) :]


def duplicate_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.randint(1, 128)]
    at = rng.randrange(len(data) + 1)
    return data[:at] + chunk + data[at:]


def zero_run(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    count = min(rng.randint(1, 64), len(data) - at)
    return data[:at] + bytes(count) + data[at + count :]


BYTES: tuple[Mutator, ...] = (
    flip_bits,
    replace_bytes,
    truncate,
    insert_run,
    delete_run,
    duplicate_chunk,
    zero_run,
)

# -- protobuf wire-format mutations ---------------------------------------------------------------

_LEN = 2
_INTERESTING_INTS = (0, 1, 2, 255, 2**15, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**63 - 1, 2**64 - 1)
_INTERESTING_PAYLOADS = (
    b"",
    b"../../../../etc/passwd",
    b"/dev/zero",
    b"\xff\xfe\x00",
    b"x" * 300,
    b"to",
)


@dataclass(frozen=True)
class _Field:
    tag: int  # offset of the tag varint
    payload: int  # offset of the value (after the length varint for a length-delimited field)
    end: int
    wire: int
    parent: int  # index of the enclosing length-delimited field, -1 at the top


def _varint(data: bytes, at: int, end: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < end and shift < 70:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def _encode_varint(value: int) -> bytes:
    value &= 2**64 - 1
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _parse_fields(
    data: bytes, start: int, end: int, parent: int, depth: int, found: list[_Field]
) -> bool:
    """Appends the fields of the message at ``data[start:end]`` (and of nested ones); False if
    it is no message. A length-delimited payload that parses whole is taken for a nested message."""
    mark = len(found)
    at = start
    while at < end:
        tag = _varint(data, at, end)
        if tag is None or tag[0] >> 3 == 0 or len(found) > 20000:
            del found[mark:]
            return False
        wire, value_at = tag[0] & 7, tag[1]
        if wire == 0:
            read = _varint(data, value_at, end)
            if read is None:
                del found[mark:]
                return False
            payload, field_end = value_at, read[1]
        elif wire in (1, 5):
            payload, field_end = value_at, value_at + (8 if wire == 1 else 4)
        elif wire == _LEN:
            read = _varint(data, value_at, end)
            if read is None:
                del found[mark:]
                return False
            payload, field_end = read[1], read[1] + read[0]
        else:
            del found[mark:]
            return False
        if field_end > end:
            del found[mark:]
            return False
        found.append(_Field(at, payload, field_end, wire, parent))
        if wire == _LEN and depth < 12 and field_end > payload:
            _parse_fields(data, payload, field_end, len(found) - 1, depth + 1, found)
        at = field_end
    return True


def protobuf_fields(data: bytes) -> list[_Field]:
    found: list[_Field] = []
    return found if _parse_fields(data, 0, len(data), -1, 0, found) else []


def _splice(
    data: bytes, fields: list[_Field], index: int, start: int, end: int, new: bytes
) -> bytes:
    """Replaces ``data[start:end]`` inside field ``index`` (or ``index``'s parent's payload when
    the span is the whole field) and rewrites the length of every enclosing field to match."""
    delta = len(new) - (end - start)
    out = data[:start] + new + data[end:]
    while index >= 0:
        enclosing = fields[index]
        if enclosing.wire == _LEN and enclosing.payload <= start and end <= enclosing.end:
            length_at = _varint(data, enclosing.tag, enclosing.end)
            assert length_at is not None
            old = out[length_at[1] : enclosing.payload]
            length = _encode_varint(enclosing.end - enclosing.payload + delta)
            out = out[: length_at[1]] + length + out[enclosing.payload :]
            delta += len(length) - len(old)
        index = enclosing.parent
    return out


def _pick(fields: list[_Field], rng: random.Random, wire: int | None = None) -> int | None:
    chosen = [i for i, f in enumerate(fields) if wire is None or f.wire == wire]
    return rng.choice(chosen) if chosen else None


def _field_to_mutate(
    data: bytes, rng: random.Random, wire: int | None = None
) -> tuple[list[_Field], _Field] | None:
    """Every field of ``data``'s framing and one of them (of wire type ``wire``, else any);
    None where there is none (the caller flips bits instead)."""
    fields = protobuf_fields(data)
    index = _pick(fields, rng, wire)
    return None if index is None else (fields, fields[index])


def protobuf_length(data: bytes, rng: random.Random) -> bytes:
    """A length prefix that lies (enclosing lengths left alone)."""
    picked = _field_to_mutate(data, rng, _LEN)
    if picked is None:
        return flip_bits(data, rng)
    fields, one = picked
    length_at = _varint(data, one.tag, one.end)
    assert length_at is not None
    size = one.end - one.payload
    lie = rng.choice((0, max(size - 1, 0), size + 1, size * 2 + 7, *_INTERESTING_INTS[4:]))
    return data[: length_at[1]] + _encode_varint(lie) + data[one.payload :]


def protobuf_tag(data: bytes, rng: random.Random) -> bytes:
    """A field renumbered or given another wire type, framing kept."""
    picked = _field_to_mutate(data, rng)
    if picked is None:
        return flip_bits(data, rng)
    fields, one = picked
    read = _varint(data, one.tag, one.end)
    assert read is not None
    number = rng.choice((rng.randint(1, 20), read[0] >> 3))
    wire = rng.choice((one.wire, rng.choice((0, 1, 2, 5))))
    return _splice(data, fields, one.parent, one.tag, read[1], _encode_varint(number << 3 | wire))


def protobuf_varint(data: bytes, rng: random.Random) -> bytes:
    """A varint value (a dim, a data type, an attribute, an offset) set to an extreme."""
    picked = _field_to_mutate(data, rng, 0)
    if picked is None:
        return flip_bits(data, rng)
    fields, one = picked
    value = rng.choice((*_INTERESTING_INTS, -1, -(2**31), rng.randint(0, 30)))
    return _splice(data, fields, one.parent, one.payload, one.end, _encode_varint(value))


def protobuf_payload(data: bytes, rng: random.Random) -> bytes:
    """A string or bytes value (a name, a location, raw data) replaced by another."""
    picked = _field_to_mutate(data, rng, _LEN)
    if picked is None:
        return flip_bits(data, rng)
    fields, one = picked
    if rng.random() < 0.5:
        other_index = _pick(fields, rng, _LEN)
        other = fields[other_index] if other_index else one
        payload = data[other.payload : other.end]
    else:
        payload = rng.choice(_INTERESTING_PAYLOADS)
    length = _encode_varint(len(payload))
    length_at = _varint(data, one.tag, one.end)
    assert length_at is not None
    return _splice(data, fields, one.parent, length_at[1], one.end, length + payload)


def protobuf_drop(data: bytes, rng: random.Random) -> bytes:
    fields = protobuf_fields(data)
    index = _pick(fields, rng)
    if index is None:
        return truncate(data, rng)
    one = fields[index]
    return _splice(data, fields, one.parent, one.tag, one.end, b"")


def protobuf_duplicate(data: bytes, rng: random.Random) -> bytes:
    fields = protobuf_fields(data)
    index = _pick(fields, rng)
    if index is None:
        return duplicate_chunk(data, rng)
    one = fields[index]
    whole = data[one.tag : one.end]
    return _splice(data, fields, one.parent, one.end, one.end, whole)


PROTOBUF: tuple[Mutator, ...] = BYTES + (
    protobuf_length,
    protobuf_tag,
    protobuf_varint,
    protobuf_payload,
    protobuf_payload,
    protobuf_drop,
    protobuf_duplicate,
)

# -- zip and text mutations -------------------------------------------------------------------

_ZIP_HEADERS = {b"PK\x03\x04": 30, b"PK\x01\x02": 46, b"PK\x05\x06": 22}


def zip_header_field(data: bytes, rng: random.Random) -> bytes:
    """A 2- or 4-byte field of a local, central or end record set to an extreme value."""
    starts = [
        (at, size) for signature, size in _ZIP_HEADERS.items() for at in _find_all(data, signature)
    ]
    if not starts:
        return flip_bits(data, rng)
    at, size = rng.choice(starts)
    width = rng.choice((2, 4))
    offset = at + 4 + 2 * rng.randrange((size - 4 - width) // 2 + 1)
    value = rng.choice((0, 1, 2**width * 8 - 1, rng.randrange(2 ** (width * 8))))
    packed = struct.pack("<H" if width == 2 else "<I", value % 2 ** (width * 8))
    return data[:offset] + packed + data[offset + width :]


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


ZIP: tuple[Mutator, ...] = BYTES + (zip_header_field, zip_header_field, zip_header_field)

_TEXT_NUMBERS = (b"0", b"-1", b"2147483648", b"99999999999999999999", b"1e40", b"nan", b"-0")


def text_number(data: bytes, rng: random.Random) -> bytes:
    runs = [
        i for i in range(len(data)) if data[i : i + 1].isdigit() and not data[i - 1 : i].isdigit()
    ]
    if not runs:
        return flip_bits(data, rng)
    at = rng.choice(runs)
    end = at
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    return data[:at] + rng.choice(_TEXT_NUMBERS) + data[end:]


def text_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True)
    at = rng.randrange(len(lines))
    choice = rng.randrange(3)
    if choice == 0:
        del lines[at]
    elif choice == 1:
        lines.insert(at, lines[at])
    else:
        other = rng.randrange(len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    return b"".join(lines)


def text_string(data: bytes, rng: random.Random) -> bytes:
    quoted = [i for i in _find_all(data, b'"')]
    if len(quoted) < 2:
        return flip_bits(data, rng)
    pair = rng.randrange(len(quoted) // 2) * 2
    start, end = quoted[pair] + 1, quoted[pair + 1]
    other = rng.randrange(len(quoted) // 2) * 2
    value = rng.choice(
        (b"", b"\\377\\376", data[quoted[other] + 1 : quoted[other + 1]], b"x" * 300)
    )
    return data[:start] + value + data[end:]


TEXT: tuple[Mutator, ...] = BYTES + (text_number, text_number, text_line, text_string)


def mutate(data: bytes, rng: random.Random, mutators: Sequence[Mutator]) -> tuple[str, bytes]:
    """One mutation, sometimes two stacked; returns their names and the result."""
    names = []
    for _ in range(2 if rng.random() < 0.2 else 1):
        if not data:
            data = bytes([rng.randrange(256)])
            names.append("byte")
            continue
        mutator = rng.choice(mutators)
        data = mutator(data, rng)
        names.append(mutator.__name__)
    return "+".join(names), data
