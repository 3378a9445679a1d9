"""Order-preserving encoding of view key fields into storage keys.

Byte order of the encoded key is the order of the values: signed integers have their sign bit
flipped, floats are mapped so that negative numbers sort first, and a variable-width value
(string, bytes, QName) that is not the last field is escaped (0x00 -> 0x00 0xFF) and ended by
0x00 0x01, so that neither order nor prefixes are broken. The last field is written raw, so a
prefix of it selects a range of rows, as Voedger's view reads allow.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Sequence
from typing import Any

from voedger.appdef import DataKind, Field

_SIGNED = {DataKind.int8: 1, DataKind.int16: 2, DataKind.int32: 4, DataKind.int64: 8}
_END = b"\x00\x01"


def encode_value(kind: DataKind, value: Any, last: bool) -> bytes:
    if kind in _SIGNED:
        width = _SIGNED[kind]
        return (int(value) + (1 << (width * 8 - 1))).to_bytes(width, "big")
    if kind is DataKind.RecordID:
        return int(value).to_bytes(8, "big")
    if kind is DataKind.bool:
        return b"\x01" if value else b"\x00"
    if kind in (DataKind.float32, DataKind.float64):
        bits: int = struct.unpack(">Q", struct.pack(">d", float(value)))[0]
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
        return bits.to_bytes(8, "big")
    raw: bytes = base64.b64decode(value) if kind is DataKind.bytes else str(value).encode()
    if last:
        return raw
    return raw.replace(b"\x00", b"\x00\xff") + _END


def _int_encoder(width: int) -> Callable[[Any], bytes]:
    bias = 1 << (width * 8 - 1)
    return lambda v: (int(v) + bias).to_bytes(width, "big")


INT_ENCODERS: dict[DataKind, Callable[[Any], bytes]] = {
    **{k: _int_encoder(w) for k, w in _SIGNED.items()},
    DataKind.RecordID: lambda v: int(v).to_bytes(8, "big"),
}


def encode_key(fields: Sequence[Field], values: Sequence[Any], complete: bool = True) -> bytes:
    """Encode ``values`` of the first ``len(values)`` of ``fields``.

    With ``complete`` false the last value given is a prefix of a longer key, and is written
    raw even when its field is not the last one, so that it bounds a range read; but a QName
    is matched whole, as Voedger matches its QName IDs (``registry.Login`` is not a prefix of
    ``registry.LoginAlias``).
    """
    if len(values) == 1 and len(fields) >= 1:  # the common case: one integer key field
        encoder = INT_ENCODERS.get(fields[0].kind)
        if encoder is not None:
            return encoder(values[0])
    out = bytearray()
    n = len(values)
    for i, (f, v) in enumerate(zip(fields, values, strict=False)):
        last = i == len(fields) - 1 or (not complete and i == n - 1 and f.kind is not DataKind.QName)
        out += encode_value(f.kind, v, last)
    return bytes(out)


def increment(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (b"" if none: open end)."""
    data = bytearray(prefix)
    while data:
        if data[-1] != 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b""
