"""The sys functions the BLOB endpoints call (``voedger.router.blobs``), as Voedger has them.

The router calls them with the client's credential before it stores or sends a BLOB, so the
ACL decides who may upload (``UploadBLOBHelper``, granted to ``sys.BLOBUploader``; the temporary
``RegisterTempBLOB1d``) and who may download (``DownloadBLOBAuthnz``); the bytes never pass
through them. ``UploadBLOBHelper`` books the BLOB's ID: a ``sys.BLOB`` record, "unknown" until
the upload completes.
"""

from __future__ import annotations

from voedger.apps.sys.builtins import platform
from voedger.blobs.store import STATUS_UNKNOWN
from voedger.state import Intents, State


@platform.command("sys.UploadBLOBHelper")
def upload_blob_helper(state: State, intents: Intents) -> None:
    owner = {k: v for k in ("OwnerRecord", "OwnerRecordField") if (v := state.arg.get(k))}
    intents.insert("sys.BLOB", status=STATUS_UNKNOWN, **owner)


@platform.command("sys.RegisterTempBLOB1d")
def register_temp_blob_1d(state: State, intents: Intents) -> None:
    """Nothing to do: executing it is the check that the caller may upload."""


@platform.command("sys.DownloadBLOBHelper")
def download_blob_helper(state: State, intents: Intents) -> None:
    """Deprecated in Voedger for ``q.sys.DownloadBLOBAuthnz``; executing it is the check."""


@platform.query("sys.DownloadBLOBAuthnz")
def download_blob_authnz(state: State, intents: Intents) -> None:
    """Nothing to answer: executing it is the check that the caller may download."""
