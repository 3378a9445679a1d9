"""The OpenAPI 3 document of the whole HTTP API this server answers: API v1 (functions, BLOBs),
API v2 (workspaces' commands, queries, views, documents, BLOBs; sign-in, users, devices; schemas),
``/api/check``, each with the answers it gives, errors included, in Voedger's two error shapes.

It is made here, in one place, from the routes of :func:`voedger.router.app.build_app`; the tests
validate it and fuzz a running server against it (``tests/router/test_openapi.py``), and
``python -m voedger.router.openapi`` prints it. Every API route also answers ``OPTIONS`` (CORS).
``api_document("owner/app")`` names one application in the paths instead of ``{owner}/{app}``.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import orjson

__all__ = ["ERROR_STATUSES", "api_document"]

ERROR_STATUSES: Final = (400, 401, 403, 404, 405, 409, 410, 413, 415, 429, 500, 503)
"""The error statuses any API route may answer: a client's mistakes, refusals, limits; 500 for an
extension that breaks its declared result type (as Voedger); 503 while an owner is away."""
_TEXTS: Final = {
    400: "Bad request: the URL, a header or the body is not what the endpoint takes",
    401: "The credential is missing where needed, expired or not valid",
    403: "The ACL refuses the operation",
    404: "No such workspace, record, type, BLOB or endpoint",
    405: "The method is not allowed there",
    409: "A conflict: a unique value taken, a workspace not yet ready",
    410: "The workspace or record is gone (deactivated)",
    413: "The body or BLOB is too large",
    415: "The media type is not accepted",
    429: "A rate or limit is exceeded; see Retry-After",
    500: "The extension answered something its declared type does not allow",
    503: "The owner of the workspace is not available now; see Retry-After",
}
_QNAME: Final = {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*\\.[a-zA-Z_][a-zA-Z0-9_]*$"}
_ID: Final = {"type": "integer", "format": "int64", "minimum": 1}


def _v1_error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["sys.Error"],
        "properties": {
            "sys.Error": {
                "type": "object",
                "required": ["HTTPStatus", "Message"],
                "properties": {
                    "HTTPStatus": {"type": "integer"},
                    "Message": {"type": "string"},
                    "QName": {"type": "string"},
                    "Data": {"type": "string"},
                },
            }
        },
    }


def _v2_error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "qname": {"type": "string"},
            "data": {"type": "string"},
        },
    }


def _json(ref_or_schema: str | dict[str, Any]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref_or_schema}"} if isinstance(ref_or_schema, str) else ref_or_schema
    return {"application/json": {"schema": schema}}


def _errors(v2: bool, array: bool = False) -> dict[str, Any]:
    """The error answers of an operation; ``array``: a read whose answer is an array, whose
    failures in the query processor are ``{"results":[],"error":{...}}`` (the router's own, such
    as a bad WSID, are plain)."""
    ref = "#/components/responses/" + ("V2ReadError" if array else "V2Error" if v2 else "V1Error")
    return {str(s): {"$ref": f"{ref}{s}"} for s in ERROR_STATUSES}


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_READ_PARAMS: Final = [
    _query_param("where", {"type": "string"}, "JSON object of conditions: a value, or {$in|$eq|$gt|...: value}"),
    _query_param("order", {"type": "string"}, "Fields to order by, comma-separated; -field descends"),
    _query_param("limit", {"type": "integer", "minimum": 0}, "At most this many results"),
    _query_param("skip", {"type": "integer", "minimum": 0}, "Results to skip"),
    _query_param("include", {"type": "string"}, "References and containers to expand, dotted paths"),
    _query_param("keys", {"type": "string"}, "Fields to keep, dotted paths"),
]
_AUTH: Final[list[dict[str, list[str]]]] = [{"BearerAuth": []}, {"CookieAuth": []}, {}]


def _op(
    summary: str,
    ok: dict[str, Any],
    v2: bool = True,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    auth: bool = True,
    array: bool = False,
) -> dict[str, Any]:
    o: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(v2, array)}}
    if params:
        o["parameters"] = params
    if body is not None:
        o["requestBody"] = body
    o["security"] = _AUTH if auth else [{}]
    return o


def _preflight() -> dict[str, Any]:
    return {
        "summary": "CORS preflight: 200, no body, Access-Control-Allow-Origin and -Headers",
        "security": [{}],
        "responses": {
            "200": {
                "description": "Any origin may call the endpoint",
                "headers": {
                    "Access-Control-Allow-Origin": {"schema": {"type": "string", "enum": ["*"]}},
                    "Access-Control-Allow-Headers": {"schema": {"type": "string"}},
                },
            }
        },
    }


def _ok(status: int, content: dict[str, Any] | None, description: str = "OK") -> dict[str, Any]:
    r: dict[str, Any] = {"description": description}
    if content is not None:
        r["content"] = content
    return {str(status): r}


def _check_op() -> dict[str, Any]:
    """``/api/check``: 200 ``ok`` when ready; 503 ``not ready`` while a cluster's process joins
    or leaves (its share of partitions not taken, or being handed over)."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    o = _op("Is the router up and ready?", _ok(200, text), auth=False)
    o["responses"]["503"] = {"description": "Not ready: joining or leaving the cluster", "content": text}
    return o


def _json_body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": _json(schema)}


STREAM: Final = "x-voedger-stream"
"""Marks an operation whose 200 answer is a stream of server-sent events that lasts as long as
the client stays (a fuzzer does not call those)."""


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _n10n_paths(apps: str, app_params: list[dict[str, Any]], wsid: dict[str, Any]) -> dict[str, Any]:
    """Notifications (``router/n10n.py``): API v2 ``notifications``, API v1 ``/n10n/*``."""
    events = {"text/event-stream": {"schema": {"type": "string"}}}
    stream_ok = {
        "200": {
            "description": "Server-sent events: `channelId` first, then one event per change of a view",
            "content": events,
        }
    }
    payload = _query_param("payload", {"type": "string"}, "JSON: SubjectLogin or Channel, and ProjectionKey")
    v1_errors = {
        "400": _text("The payload is missing or malformed; an unknown channel"),
        "404": {"$ref": "#/components/responses/V1Error404"},
        "429": _text("A quota of channels or subscriptions is exhausted"),
        "500": {"$ref": "#/components/responses/V1Error500"},
    }

    def v1(summary: str, ok: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"summary": summary, "security": [{}], "parameters": params, "responses": {**ok, **v1_errors}}

    key = {"type": "object", "properties": {"App": {"type": "string"}, "Projection": _QNAME, "WS": _ID}}
    offset = _path_param("offset", {"type": "string", "pattern": "^[0-9]{1,10}$"}, "The new offset")
    update = v1("Tell the subscribers of a key that it changed (Voedger's test hook)", _ok(200, None), [offset])
    update["requestBody"] = _json_body(key, required=True)
    channel = _path_param("channel", {"type": "string"}, "The channel's ID, from its `channelId` event")
    view = _path_param("view", _QNAME, "The view: pkg.View")
    sub_params = [*app_params, channel, wsid, view]
    subscription = {
        "type": "object",
        "properties": {"entity": _QNAME, "wsid": {"type": "integer", "format": "int64", "minimum": 1}},
    }
    body = {
        "type": "object",
        "properties": {
            "subscriptions": {"type": "array", "items": subscription},
            "expiresIn": {"type": "integer", "description": "Seconds the channel lives (0: a day)"},
        },
    }
    return {
        f"{apps}/notifications": {
            "post": {
                **_op(
                    "Open a notification channel and subscribe it", stream_ok, params=app_params, body=_json_body(body)
                ),
                STREAM: True,
            },
        },
        f"{apps}/notifications/{{channel}}/workspaces/{{wsid}}/subscriptions/{{view}}": {
            "put": _op("Subscribe a channel to one more view", _ok(200, None), params=sub_params),
            "delete": _op("Unsubscribe a channel from a view", _ok(204, None, "Unsubscribed"), params=sub_params),
        },
        "/n10n/channel": {"get": {**v1("Open a notification channel (API v1)", stream_ok, [payload]), STREAM: True}},
        "/n10n/subscribe": {"get": v1("Subscribe a channel to keys (API v1)", _ok(200, None), [payload])},
        "/n10n/unsubscribe": {"get": v1("Unsubscribe a channel from keys (API v1)", _ok(200, None), [payload])},
        "/n10n/update/{offset}": {m: update for m in ("get", "post", "put", "patch", "delete")},
    }


def api_document(app: str | None = None) -> dict[str, Any]:
    """The document; ``app`` (``owner/name``) puts one application's name in the paths."""
    apps = f"/api/v2/apps/{app}" if app else "/api/v2/apps/{owner}/{app}"
    v1_app = f"/api/{app}" if app else "/api/{owner}/{app}"
    blob_app = f"/blob/{app}" if app else "/blob/{owner}/{app}"
    ws = f"{apps}/workspaces/{{wsid}}"
    app_params = (
        []
        if app
        else [
            _path_param("owner", {"type": "string"}, "The owner of the application"),
            _path_param("app", {"type": "string"}, "The application's name"),
        ]
    )
    wsid = _path_param("wsid", {"type": "integer", "format": "int64", "minimum": 1}, "The workspace (WSID)")
    name = _path_param("name", _QNAME, "A QName: pkg.Name")
    rid = _path_param("id", _ID, "A record ID")
    field = _path_param("field", {"type": "string"}, "A BLOB field of the table")
    ws_params = [*app_params, wsid]
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    blob_read_ok = {
        "200": {
            "description": "The BLOB's bytes, with its Content-Type and its name in Blob-Name",
            "headers": {"Blob-Name": {"schema": {"type": "string"}}},
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
    blob_headers = [
        {"name": "Blob-Name", "in": "header", "required": False, "schema": {"type": "string"}},
    ]

    paths: dict[str, dict[str, Any]] = {
        "/api/check": {"get": _check_op(), "post": _check_op()},
        f"{v1_app}/{{wsid}}/{{resource}}": {
            "post": _op(
                "API v1: execute a command (c.pkg.Name) or a query (q.pkg.Name) in a workspace",
                _ok(200, _json("V1Answer")),
                v2=False,
                params=[
                    *ws_params,
                    _path_param("resource", {"type": "string"}, "c.<pkg>.<Command> or q.<pkg>.<Query>"),
                ],
                body=_json_body({"type": "object"}),
            ),
        },
        f"{blob_app}/{{wsid}}": {
            "post": _op(
                "API v1: upload a BLOB (name and mimeType query parameters, or Content-Type); the ID answers",
                _ok(200, {"text/plain": {"schema": {"type": "string"}}}),
                v2=False,
                params=[
                    *ws_params,
                    _query_param("name", {"type": "string"}, "The BLOB's name"),
                    _query_param("mimeType", {"type": "string"}, "The BLOB's content type"),
                    _query_param("ttl", {"type": "string"}, "1d: a temporary BLOB"),
                ],
                body={"required": False, "content": binary},
            ),
        },
        f"{blob_app}/{{wsid}}/{{blob}}": {
            "get": _op(
                "API v1: download a BLOB by its ID or SUUID",
                blob_read_ok,
                v2=False,
                params=[*ws_params, _path_param("blob", {"type": "string"}, "A BLOB ID or an SUUID")],
            ),
        },
        f"{apps}/auth/login": {
            "post": _op(
                "Sign in: a principal token for a login and password",
                _ok(200, _json("PrincipalToken")),
                params=app_params,
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["login", "password"],
                        "properties": {"login": {"type": "string"}, "password": {"type": "string"}},
                    },
                    required=True,
                ),
                auth=False,
            ),
        },
        f"{apps}/auth/refresh": {
            "post": _op(
                "A fresh principal token for the caller's", _ok(200, _json("PrincipalToken")), params=app_params
            ),
        },
        f"{apps}/users": {
            "post": _op(
                "Sign up: a new login (with a verified e-mail token, or a login and password)",
                _ok(201, _json({"type": "object"})),
                params=app_params,
                body=_json_body({"type": "object"}, required=True),
                auth=False,
            ),
        },
        f"{apps}/users/change-password": {
            "post": _op(
                "Change a login's password",
                _ok(200, None, "OK, with an empty body"),
                params=app_params,
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "login": {"type": "string"},
                            "oldPassword": {"type": "string"},
                            "newPassword": {"type": "string"},
                        },
                    },
                    required=True,
                ),
                auth=False,
            ),
        },
        f"{apps}/devices": {
            "post": _op(
                "Register a device: a login and password of its own",
                _ok(
                    201,
                    _json(
                        {
                            "type": "object",
                            "properties": {"login": {"type": "string"}, "password": {"type": "string"}},
                        }
                    ),
                ),
                params=app_params,
            ),
        },
        f"{apps}/schemas": {
            "get": _op(
                "The workspaces with published roles (all of them for sys.Developer), an HTML page",
                _ok(200, {"text/html": {"schema": {"type": "string"}}}),
                params=app_params,
            ),
        },
        f"{apps}/schemas/{{workspace}}/roles": {
            "get": _op(
                "The (published) roles of a workspace, an HTML page",
                _ok(200, {"text/html": {"schema": {"type": "string"}}}),
                params=[*app_params, _path_param("workspace", {"type": "string"}, "pkg.Workspace")],
            ),
        },
        f"{apps}/schemas/{{workspace}}/roles/{{role}}": {
            "get": _op(
                "What a role may do in a workspace: an OpenAPI 3 document (JSON; HTML for Accept: text/html)",
                _ok(
                    200,
                    {
                        "application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}},
                        "text/html": {"schema": {"type": "string"}},
                    },
                ),
                params=[
                    *app_params,
                    _path_param("workspace", {"type": "string"}, "pkg.Workspace"),
                    _path_param("role", {"type": "string"}, "pkg.Role"),
                ],
            ),
        },
        f"{ws}/commands/{{name}}": {
            "post": _op(
                "Execute a command",
                _ok(200, _json("CommandResult")),
                params=[*ws_params, name],
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {"args": {"type": "object"}, "unloggedArgs": {"type": "object"}},
                    }
                ),
            ),
        },
        f"{ws}/queries/{{name}}": {
            "get": _op(
                "Execute a query",
                _ok(200, _json("Results")),
                params=[*ws_params, name, *_READ_PARAMS, _query_param("args", {"type": "string"}, "JSON arguments")],
                array=True,
            ),
        },
        f"{ws}/views/{{name}}": {
            "get": _op(
                "Read a view (where names its partition key)",
                _ok(200, _json("Results")),
                params=[*ws_params, name, *_READ_PARAMS],
                array=True,
            ),
        },
        f"{ws}/cdocs/{{name}}": {
            "get": _op(
                "Read the collection of a table",
                _ok(200, _json("Results")),
                params=[*ws_params, name, *_READ_PARAMS],
                array=True,
            ),
        },
        f"{ws}/docs/{{name}}": {
            "post": _op(
                "Create a record (and the records of its containers)",
                _ok(201, _json("CommandResult")),
                params=[*ws_params, name],
                body=_json_body({"type": "object"}, required=True),
            ),
            "get": _op(
                "Read a singleton",
                _ok(200, _json({"type": "object"})),
                params=[*ws_params, name, *_READ_PARAMS[4:]],
            ),
        },
        f"{ws}/docs/{{name}}/{{id}}": {
            "get": _op(
                "Read a record", _ok(200, _json({"type": "object"})), params=[*ws_params, name, rid, *_READ_PARAMS[4:]]
            ),
            "patch": _op(
                "Update a record's fields",
                _ok(200, _json("CommandResult")),
                params=[*ws_params, name, rid],
                body=_json_body({"type": "object"}, required=True),
            ),
            "delete": _op("Deactivate a record", _ok(200, _json("CommandResult")), params=[*ws_params, name, rid]),
        },
        f"{ws}/docs/{{name}}/blobs/{{field}}": {
            "post": _op(
                "Upload a BLOB for a field of the table (Content-Type, Blob-Name)",
                _ok(201, _json({"type": "object", "required": ["blobID"], "properties": {"blobID": _ID}})),
                params=[*ws_params, name, field, *blob_headers],
                body={"required": False, "content": binary},
            ),
        },
        f"{ws}/docs/{{name}}/{{id}}/blobs/{{field}}": {
            "get": _op("Download the BLOB a record's field holds", blob_read_ok, params=[*ws_params, name, rid, field]),
        },
        f"{ws}/tblobs": {
            "post": _op(
                "Upload a temporary BLOB (kept a day)",
                _ok(
                    201,
                    _json(
                        {"type": "object", "required": ["blobSUUID"], "properties": {"blobSUUID": {"type": "string"}}}
                    ),
                ),
                params=[*ws_params, *blob_headers],
                body={"required": False, "content": binary},
            ),
        },
        f"{ws}/tblobs/{{suuid}}": {
            "get": _op(
                "Download a temporary BLOB",
                blob_read_ok,
                params=[*ws_params, _path_param("suuid", {"type": "string"}, "The SUUID upload answered")],
            ),
        },
        **_n10n_paths(apps, app_params, wsid),
    }
    # Voedger's v1 route also takes PATCH, as POST
    paths[f"{v1_app}/{{wsid}}/{{resource}}"]["patch"] = paths[f"{v1_app}/{{wsid}}/{{resource}}"]["post"]
    paths[f"{blob_app}/{{wsid}}/{{blob}}"]["post"] = paths[f"{blob_app}/{{wsid}}/{{blob}}"]["get"]
    for item in paths.values():
        params: list[dict[str, Any]] = next((o["parameters"] for o in item.values() if "parameters" in o), [])
        pre = _preflight()
        in_path = [p for p in params if p["in"] == "path"]
        if in_path:
            pre["parameters"] = in_path
        item["options"] = pre

    responses: dict[str, Any] = {}
    for s in ERROR_STATUSES:
        responses[f"V1Error{s}"] = {"description": _TEXTS[s], "content": _json("V1Error")}
        responses[f"V2Error{s}"] = {"description": _TEXTS[s], "content": _json("V2Error")}
        responses[f"V2ReadError{s}"] = {
            "description": _TEXTS[s],
            "content": _json(
                {"anyOf": [{"$ref": "#/components/schemas/V2Error"}, {"$ref": "#/components/schemas/V2ArrayError"}]}
            ),
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Voedger HTTP API (voedger-py)",
            "version": "1",
            "description": __doc__.split("\n\n")[0].replace("\n", " ") if __doc__ else "",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "CookieAuth": {"type": "apiKey", "in": "cookie", "name": "Authorization"},
            },
            "responses": responses,
            "schemas": {
                "V1Error": _v1_error(),
                "V2Error": _v2_error(),
                "V1Answer": {"type": "object"},
                "PrincipalToken": {
                    "type": "object",
                    "required": ["principalToken", "expiresInSeconds", "profileWSID"],
                    "properties": {
                        "principalToken": {"type": "string"},
                        "expiresInSeconds": {"type": "integer"},
                        "profileWSID": {"type": "integer", "format": "int64"},
                    },
                },
                "CommandResult": {
                    "type": "object",
                    "properties": {
                        "currentWLogOffset": {"type": "integer", "format": "int64"},
                        "newIDs": {"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}},
                        "result": {"type": "object"},
                    },
                },
                "Results": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {
                        "results": {"type": "array", "items": {"type": "object"}},
                        "error": {"$ref": "#/components/schemas/V2Error"},
                    },
                },
                "V2ArrayError": {
                    "type": "object",
                    "required": ["results", "error"],
                    "properties": {
                        "results": {"type": "array", "items": {"type": "object"}},
                        "error": {"$ref": "#/components/schemas/V2Error"},
                    },
                },
            },
        },
    }


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(api_document(), option=orjson.OPT_INDENT_2) + b"\n")
