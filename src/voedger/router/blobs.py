"""BLOB endpoints: upload and download, API v1 and v2, persistent and temporary.

As in Voedger, the router itself streams the bytes between the client and the application's
storage (``voedger.blobs``), a chunk at a time, and asks the owner of the workspace, with the
client's credential, whatever needs the application's data:

- upload: ``c.sys.UploadBLOBHelper`` books the BLOB's ID (a ``sys.BLOB`` record) and is the
  ACL's check (``c.sys.RegisterTempBLOB1d`` for a temporary BLOB), then the bytes go to storage,
  then ``c.sys.CUD`` marks the ``sys.BLOB`` completed;
- download (API v2): the owner record's BLOB field is read through ``docs`` (so SELECT on the
  record and the field decides), a BLOB not in storage is a 404, ``q.sys.DownloadBLOBAuthnz`` is
  the ACL's check, then the bytes come from storage with ``Content-Type``, ``Blob-Name`` and
  ``Content-Length``.

Where we differ from Voedger: an API v1 download is checked with ``q.sys.DownloadBLOBAuthnz``
too (Voedger's v1 download checks no credential), and an API v1 ``multipart/form-data`` upload
without the name and mimeType query params (several BLOBs in one request, which Voedger no
longer splits but stores whole, nameless) is a 400.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from voedger.appdef import QName, Structure
from voedger.blobs import BlobKey, BlobNotFoundError, BlobStore, BlobTooLargeError, is_temp_id, new_suuid
from voedger.blobs.store import STATUS_COMPLETED
from voedger.processors.blob_owners import is_blob_field_of
from voedger.router.responses import json_response
from voedger.router.wire import BusRequest, BusResponse, Op, error_of
from voedger.syserror import SysError

if TYPE_CHECKING:
    from voedger.router.app import Router

MULTIPART: Final = "multipart/form-data"
TEMP_TTLS: Final = frozenset({"1d"})
_UPLOAD: Final = "sys.UploadBLOBHelper"
_REGISTER_TEMP: Final = "sys.RegisterTempBLOB1d"
_AUTHNZ: Final = "sys.DownloadBLOBAuthnz"
_BLOB_ID: Final = re.compile(r"^[A-Za-z0-9_-]+$")

UPLOAD_URL: Final = re.compile(
    rb"^/blob/[^/?]+/[^/?]+/[^/?]+/?(\?|$)|^/api/v2/apps/[^?]*/(blobs/[^/?]+|tblobs)/?(\?|$)"
)
"""Request targets of uploads: the HTTP server streams their bodies to the application."""


def is_upload(method: bytes, target: bytes) -> bool:
    return method == b"POST" and UPLOAD_URL.match(target) is not None


_TSPECIALS: Final = frozenset('()<>@,;:\\"/[]?=')


def _token(text: str) -> tuple[str, str]:
    """The leading token of ``text`` (RFC 1521 token characters), and the rest."""
    end = 0
    while end < len(text) and " " < text[end] < "\x7f" and text[end] not in _TSPECIALS:
        end += 1
    return text[:end], text[end:]


def _param_value(text: str) -> tuple[str, str] | None:
    """A token or a quoted string at the start of ``text``, and the rest; None if unterminated."""
    if not text.startswith('"'):
        return _token(text)
    value: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(value), text[i + 1 :]
        if c == "\\" and i + 1 < len(text):
            i += 1
            c = text[i]
        value.append(c)
        i += 1
    return None


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type and parameters of a ``Content-Type`` header, read as Voedger (Go's
    ``mime.ParseMediaType``) reads it; a 400 in its words when it cannot be read."""
    if not content_type:
        return "", {}

    def bad(what: str) -> SysError:
        return SysError(400, f"failed to parse Content-Type header: mime: {what}")

    base, _, _ = content_type.partition(";")
    media = base.strip().lower()
    kind, rest = _token(media)
    if not kind:
        raise bad("no media type")
    if rest:
        if not rest.startswith("/"):
            raise bad("expected slash after first token")
        sub, rest = _token(rest[1:])
        if not sub:
            raise bad("expected token after slash")
        if rest:
            raise bad("unexpected content after media subtype")
    params: dict[str, str] = {}
    text = content_type[len(base) :]
    while text.strip():
        text = text.lstrip()
        name, after = _token(text[1:].lstrip()) if text.startswith(";") else ("", "")
        after = after.lstrip()
        parsed = _param_value(after[1:].lstrip()) if name and after.startswith("=") else None
        if parsed is None or (not parsed[0] and parsed[1] == after[1:].lstrip()):
            if text.strip() == ";":  # a trailing semicolon is ignored
                break
            raise bad("invalid media parameter")
        name = name.lower()
        if params.get(name, parsed[0]) != parsed[0]:
            raise bad("duplicate parameter name")
        params[name] = parsed[0]
        text = parsed[1]
    return media, params


def _check_name(name: str) -> str:
    if any(c in name for c in "\r\n\0"):
        raise SysError(400, "a BLOB name must not hold line breaks")
    return name


class BlobEndpoints:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.vvm = router.vvm

    # --- calls to the owner -------------------------------------------------------------------

    async def _call(
        self,
        request: Request,
        op: Op,
        app: str,
        wsid: int,
        name: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        record_id: int = 0,
        params: dict[str, str] | None = None,
    ) -> BusResponse:
        """One call to the owner of ``wsid`` with the client's credential; its error raised."""
        wsid, partition, transport = self.router.resolve(app, str(wsid))
        authorization, cookie = self.router.credential(request.headers, request.cookies)
        bus = BusRequest(
            op,
            method,
            app,
            wsid,
            partition,
            name,
            record_id,
            authorization,
            cookie,
            body,
            params or {},
            request.client.host if request.client else "",
        )
        reply = await self.router.send(bus, transport, limit_reads=False)
        if reply.status >= 300:
            raise error_of(reply)
        return reply

    def _store(self, app: str) -> BlobStore:
        rt = self.vvm.app(app).runtime
        return BlobStore(rt.storage, rt.clock)

    def _where(self, request: Request) -> tuple[str, int]:
        p = request.path_params
        app = f"{p['owner']}/{p['app']}"
        wsid, _, _ = self.router.resolve(app, p["wsid"])
        return app, wsid

    # --- upload -------------------------------------------------------------------------------

    async def v1_upload(self, request: Request) -> Response:
        """``POST /blob/{owner}/{app}/{wsid}?name=..&mimeType=..[&ttl=1d]``: 200, the BLOB ID as text."""
        app, wsid = self._where(request)
        q = request.query_params
        names, types, ttl = q.getlist("name"), q.getlist("mimeType"), q.get("ttl", "")
        content_type = request.headers.get("content-type", "")
        media, params = _media_type(content_type)
        if bool(names) != bool(types):
            raise SysError(400, "both name and mimeType query params must be specified")
        self._check_ttl(ttl)
        if names:
            if content_type == MULTIPART:  # Voedger compares the whole header
                raise SysError(
                    400, f'name+mimeType query params and "{MULTIPART}" Content-Type header are mutual exclusive'
                )
        elif not content_type:
            raise SysError(400, 'neither "name"+"mimeType" query params nor Content-Type header is not provided')
        elif media != MULTIPART:
            raise SysError(
                400,
                "name+mimeType query params are not provided -> Content-Type must be mutipart/form-data "
                f"but actual is {content_type}",
            )
        elif not params.get("boundary"):
            raise SysError(400, f"boundary of {MULTIPART} is not specified")
        else:
            raise SysError(400, f"{MULTIPART} uploads are not supported: give the name and mimeType query params")
        blob_id = await self._upload(request, app, wsid, _check_name(names[0]), types[0], temporary=bool(ttl))
        # "text/plain" as Voedger sends it, without the charset Starlette would add
        return Response(blob_id, headers={"Content-Type": "text/plain"})

    async def v2_upload(self, request: Request) -> Response:
        """``POST .../docs/{pkg.table}/blobs/{field}``, ``Blob-Name`` and ``Content-Type``: 201 ``{"blobID": n}``."""
        app, wsid = self._where(request)
        table, field = request.path_params["name"], request.path_params["field"]
        _media_type(request.headers.get("content-type", ""))  # read first, as Voedger does
        owner = self._owner_type(app, table)
        if owner.field(field) is None:
            raise SysError(400, f"blob owner field {field} does not exist in blob owner {table}")
        if not is_blob_field_of(owner, field):
            raise SysError(400, f"blob owner {table}.{field} must be of blob type")
        name, content_type = self._v2_descr(request)
        blob_id = await self._upload(request, app, wsid, name, content_type, owner=(table, field))
        return json_response(201, {"blobID": int(blob_id)})

    async def v2_temp_upload(self, request: Request) -> Response:
        """``POST .../tblobs`` with ``Blob-Name``, ``Content-Type`` (and ``TTL: 1d``): 201 ``{"blobSUUID": ".."}``."""
        app, wsid = self._where(request)
        _media_type(request.headers.get("content-type", ""))  # read first, as Voedger does
        ttl = request.headers.get("ttl", "")
        if not ttl:
            # Voedger takes an upload without a TTL for a persistent BLOB, whose owner (none
            # here) it then cannot find: its words, a 400.
            raise SysError(400, "blob owner QName . is unknown")
        self._check_ttl(ttl)
        name, content_type = self._v2_descr(request)
        suuid = await self._upload(request, app, wsid, name, content_type, temporary=True)
        return json_response(201, {"blobSUUID": suuid})

    @staticmethod
    def _check_ttl(ttl: str) -> None:
        if ttl and ttl not in TEMP_TTLS:
            raise SysError(400, '"1d" is only supported for now for temporary blob ttl')

    @staticmethod
    def _v2_descr(request: Request) -> tuple[str, str]:
        name = request.headers.get("blob-name", "")
        content_type = request.headers.get("content-type", "")
        if content_type == MULTIPART:  # Voedger compares the whole header: with a boundary, it is the BLOB's type
            raise SysError(
                400, f'name+mimeType query params and "{MULTIPART}" Content-Type header are mutual exclusive'
            )
        return _check_name(name), content_type

    def _owner_type(self, app: str, table: str) -> Structure:
        try:
            qn = QName.parse(table)
        except ValueError:
            raise SysError(400, f"blob owner QName {table} is unknown") from None
        t = self.vvm.app(app).runtime.appdef.find(qn)
        if not isinstance(t, Structure):
            raise SysError(400, f"blob owner QName {table} is unknown")
        return t

    async def _upload(
        self,
        request: Request,
        app: str,
        wsid: int,
        name: str,
        content_type: str,
        *,
        temporary: bool = False,
        owner: tuple[str, str] = ("", ""),
    ) -> str:
        """Register, store and complete one BLOB; its ID (or SUUID) as text."""
        if self.vvm.config.reader:
            # A reader process of --processes opens storage read-only, and an upload's body is
            # streamed to storage here rather than sent over the hop: refused before anything is
            # registered, with a retry that may reach the writer (the port is shared).
            raise SysError(
                503,
                "BLOB uploads are taken by the writer process of this node, not by a reader; retry",
                headers={"Retry-After": "1"},
            )
        if temporary:
            await self._call(request, Op.V1_COMMAND, app, wsid, _REGISTER_TEMP, b"{}")
            key = BlobKey(wsid, suuid=new_suuid())
        else:
            args = {"OwnerRecord": owner[0], "OwnerRecordField": owner[1]} if owner[0] else {}
            reply = await self._call(request, Op.V1_COMMAND, app, wsid, _UPLOAD, orjson.dumps({"args": args}))
            key = BlobKey(wsid, blob_id=int(orjson.loads(reply.body)["NewIDs"]["1"]))
        # Registered first, as in Voedger: a caller without the right is a 403 whatever the size.
        max_size = self.vvm.config.blob_max_size
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_size:
            raise SysError(413, str(BlobTooLargeError(max_size)))
        try:
            await self._store(app).write(
                key,
                name,
                content_type,
                request.stream(),
                max_size,
                owner_record=owner[0],
                owner_record_field=owner[1],
            )
        except BlobTooLargeError as exc:
            raise SysError(413, str(exc)) from None
        except ClientDisconnect:
            raise SysError(400, "the client went away before the BLOB was sent whole") from None
        if not temporary:
            done = {"cuds": [{"sys.ID": key.blob_id, "fields": {"status": STATUS_COMPLETED}}]}
            await self._call(request, Op.V1_COMMAND, app, wsid, "sys.CUD", orjson.dumps(done))
        return str(key)

    # --- download -----------------------------------------------------------------------------

    async def v1_download(self, request: Request) -> Response:
        """``GET /blob/{owner}/{app}/{wsid}/{blobID or SUUID}``."""
        app, wsid = self._where(request)
        text = request.path_params["blob"]
        if not _BLOB_ID.match(text):
            raise SysError(400, f"BLOB ID {text!r} is neither a BLOB ID nor an SUUID")
        if is_temp_id(text):
            key = BlobKey(wsid, suuid=text)
        elif text.isdigit() and 0 < int(text) < 1 << 64:
            key = BlobKey(wsid, blob_id=int(text))
        else:
            raise SysError(400, f"BLOB ID {text!r} is neither a BLOB ID nor an SUUID")
        return await self._download(request, app, key)

    async def v2_download(self, request: Request) -> Response:
        """``GET .../docs/{pkg.table}/{id}/blobs/{field}``: the BLOB the record's field holds."""
        app, wsid = self._where(request)
        p = request.path_params
        table, field = p["name"], p["field"]
        from voedger.router.app import parse_id

        record_id = parse_id(p["id"])
        reply = await self._call(
            request, Op.V2_DOCS, app, wsid, table, method="GET", record_id=record_id, params={"keys": field}
        )
        doc: Any = orjson.loads(reply.body)
        value = doc.get(field) if isinstance(doc, dict) else None
        if not value:
            raise SysError(400, f"no value for owner field {field} in blob owner doc {table}")
        if not is_blob_field_of(self._owner_type(app, table), field) or not isinstance(value, int):
            raise SysError(400, f"owner field {table}.{field} is not of blob type")
        return await self._download(request, app, BlobKey(wsid, blob_id=value))

    async def v2_temp_download(self, request: Request) -> Response:
        """``GET .../tblobs/{SUUID}``."""
        app, wsid = self._where(request)
        suuid = request.path_params["suuid"]
        if not _BLOB_ID.match(suuid):
            raise SysError(400, f"{suuid!r} is not an SUUID")
        return await self._download(request, app, BlobKey(wsid, suuid=suuid))

    async def _download(self, request: Request, app: str, key: BlobKey) -> Response:
        store = self._store(app)
        try:
            state = await store.state(key)
        except BlobNotFoundError as exc:
            raise SysError(404, str(exc)) from None
        # As Voedger, a BLOB that is not there is a 404 before the credential is looked at.
        await self._call(request, Op.V1_QUERY, app, key.wsid, _AUTHNZ, b"{}")
        chunks: AsyncIterator[bytes] = store.read(key, state)
        response = StreamingResponse(
            chunks, status_code=200, headers={"Content-Length": str(state.size)}, media_type=None
        )
        # Voedger sends the name as it was given; Starlette would insist on latin-1.
        response.raw_headers += [
            (b"content-type", state.content_type.encode()),
            (b"blob-name", state.name.encode()),
        ]
        return response
