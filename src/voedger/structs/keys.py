"""Where things live in an application's storage: partition keys and clustering columns.

Long sequences (IDs, offsets) are "cracked": the high part goes into the partition key and the
low 12 bits into the clustering column, so one storage partition holds 4096 consecutive rows
and a range read walks them in order. All integers are big-endian, so byte order is numeric
order.
"""

from __future__ import annotations

import struct

CRACK_BITS = 12
CRACK_MASK = (1 << CRACK_BITS) - 1
ROWS_PER_PARTITION = 1 << CRACK_BITS

# The first u16 of every key says what it is (Voedger's system view numbers where it has them).
RECORDS = 19
PLOG = 20
WLOG = 21
VIEW = 0x100
APP_STATE = 0x101
"""Application-level keys that are not views (leases, bootstrap marks, secrets)."""

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_U16_U64_U64 = struct.Struct(">HQQ")
_U16_U16_U64 = struct.Struct(">HHQ")


def crack(n: int) -> tuple[int, int]:
    return n >> CRACK_BITS, n & CRACK_MASK


def uncrack(hi: int, lo: int) -> int:
    return (hi << CRACK_BITS) | lo


def record_key(wsid: int, record_id: int) -> tuple[bytes, bytes]:
    hi, lo = crack(record_id)
    return _U16_U64_U64.pack(RECORDS, wsid, hi), _U16.pack(lo)


def plog_key(partition: int, offset: int) -> tuple[bytes, bytes]:
    hi, lo = crack(offset)
    return _U16_U16_U64.pack(PLOG, partition, hi), _U16.pack(lo)


def wlog_key(wsid: int, offset: int) -> tuple[bytes, bytes]:
    hi, lo = crack(offset)
    return _U16_U64_U64.pack(WLOG, wsid, hi), _U16.pack(lo)


def offset_from_key(p_key: bytes, c_col: bytes) -> int:
    """The offset (or ID) that a cracked log or record key stands for."""
    (hi,) = struct.unpack_from(">Q", p_key, len(p_key) - 8)
    (lo,) = _U16.unpack(c_col)
    return uncrack(hi, lo)


def view_key_prefix(view: str) -> bytes:
    """What every partition key of a view starts with: the kind and the view's QName."""
    name = view.encode()
    return _U16.pack(VIEW) + _U16.pack(len(name)) + name


def view_partition_key(view: str, wsid: int, partition_fields: bytes, prefix: bytes | None = None) -> bytes:
    """A view row's partition key: the view's QName, the workspace, the encoded PK fields
    (``prefix``: the view's ``view_key_prefix``, when the caller keeps it)."""
    return (prefix or view_key_prefix(view)) + _U64.pack(wsid) + partition_fields


def app_state_key(kind: str, name: bytes) -> bytes:
    label = kind.encode()
    return _U16.pack(APP_STATE) + _U16.pack(len(label)) + label + name
