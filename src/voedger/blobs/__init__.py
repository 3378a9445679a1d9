"""BLOBs: binary objects kept in an application's storage in chunks, streamed in and out.

``keys`` says where a BLOB's rows live, ``store`` writes and reads them. The HTTP side is in
``voedger.router.blobs``; the sys functions the router calls (``UploadBLOBHelper`` and the rest)
are in ``voedger.apps.sys.blobs``; who may take a BLOB into a record is decided by
``voedger.processors.blob_owners``.
"""

from voedger.blobs.keys import TEMP_ID_MIN_LEN, BlobKey, is_temp_id, new_suuid
from voedger.blobs.store import (
    CHUNK_SIZE,
    DEFAULT_MAX_SIZE,
    TEMP_BLOB_TTL,
    BlobCorruptedError,
    BlobNotFoundError,
    BlobState,
    BlobStore,
    BlobTooLargeError,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_SIZE",
    "TEMP_BLOB_TTL",
    "TEMP_ID_MIN_LEN",
    "BlobCorruptedError",
    "BlobKey",
    "BlobNotFoundError",
    "BlobState",
    "BlobStore",
    "BlobTooLargeError",
    "is_temp_id",
    "new_suuid",
]
