"""Where a BLOB's rows live, and the IDs of temporary BLOBs.

A BLOB is a state row (its name, content type, size and status) and data rows of up to
``CHUNK_SIZE`` bytes each. Data rows are grouped into buckets of ``CHUNKS_PER_BUCKET`` rows, a
storage partition each, so that no partition grows past about 10 MiB; bucket 0 holds the state
row. Partition key: ``[BLOBS u16][kind u8][WSID u64][ID][bucket u64]``, where the ID is the
``sys.BLOB`` record ID (u64) of a persistent BLOB or the SUUID (u16 length, ASCII) of a
temporary one. A data row's clustering column is its chunk number (u64), so a range read of a
bucket gives the chunks in order.
"""

from __future__ import annotations

import base64
import secrets
import struct
import uuid
from dataclasses import dataclass
from typing import Final

BLOBS: Final = 0x102
"""The first u16 of every BLOB key (after the kinds of ``structs.keys``)."""
PERSISTENT: Final = 1
TEMPORARY: Final = 2

STATE_COL: Final = b""
"""The clustering column of the state row, in bucket 0."""

TEMP_ID_MIN_LEN: Final = 41
"""A BLOB ID this long or longer is a temporary BLOB's SUUID (43 characters), shorter is a
persistent BLOB's record ID (at most 20 digits), as Voedger tells them apart."""

TEMPLATE_BLOB: Final = "$blob"
"""In a workspace template's record (as the image holds it), a BLOB field's value that names the
BLOB's file: ``{"$blob": "<path>"}``. Initialising the workspace uploads the file and puts the new
BLOB's ID in its place."""

_HEAD = struct.Struct(">HBQ")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class BlobKey:
    """A BLOB of a workspace: persistent (``blob_id``, a ``sys.BLOB`` record) or temporary (``suuid``)."""

    wsid: int
    blob_id: int = 0
    suuid: str = ""

    def __post_init__(self) -> None:
        if (self.blob_id > 0) == bool(self.suuid):
            raise ValueError("a BLOB key has either a record ID or an SUUID")

    @property
    def temporary(self) -> bool:
        return bool(self.suuid)

    def _prefix(self) -> bytes:
        if self.suuid:
            raw = self.suuid.encode("ascii")
            return _HEAD.pack(BLOBS, TEMPORARY, self.wsid) + _U16.pack(len(raw)) + raw
        return _HEAD.pack(BLOBS, PERSISTENT, self.wsid) + _U64.pack(self.blob_id)

    def bucket(self, number: int) -> bytes:
        """The partition key of bucket ``number`` (0: the state row's)."""
        return self._prefix() + _U64.pack(number)

    def __str__(self) -> str:
        return self.suuid or str(self.blob_id)


def chunk_col(number: int) -> bytes:
    return _U64.pack(number)


def new_suuid() -> str:
    """A temporary BLOB's ID: a random UUID and 16 more random bytes, base64url without padding
    (43 characters), as Voedger makes them: unguessable, so knowing it is the right to read."""
    raw = uuid.uuid4().bytes + secrets.token_bytes(16)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_temp_id(text: str) -> bool:
    return len(text) >= TEMP_ID_MIN_LEN
