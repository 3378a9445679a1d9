"""API v2 ``schemas``: the workspaces of an application, the roles of a workspace, and an OpenAPI 3
document of what one role may do in one workspace, as Voedger's query processor serves them.

- ``GET .../schemas``: an HTML page listing, by package, the workspaces that hold a published role
  (every workspace for a ``sys.Developer``), each linking to its roles;
- ``GET .../schemas/{workspace}/roles``: an HTML page listing, by package, the published roles
  usable in the workspace (every role for a developer), each linking to its document;
- ``GET .../schemas/{workspace}/roles/{role}``: the OpenAPI 3.0 document (JSON), or a page that
  shows it when the client accepts ``text/html``. A role that is not published is a 403 unless
  the caller is a developer; an unknown workspace or role a 404.

The document lists the types the role may use (the ACL of the workspace and its ancestors, role
inheritance included, as Voedger's ``acl.PublishedTypes`` computes it): documents and records
(``docs``, ``cdocs``, their BLOB fields), views, queries and commands, with their request and
response schemas. A type whose operation is allowed on some fields only gets a component of its
own for that operation, ``<type>_<Operation>``, holding those fields. Keys are sorted, as Go's
encoder writes maps.

Where we differ from Voedger, each time to keep the document valid and true to our answers:
``int8``/``int16`` fields are integers (Voedger: strings); a function whose parameter is
``sys.ANY`` still gets its result's component; views answer 200 with ``results`` (Voedger's
document gives them no 200); the errors of queries, views and ``cdocs`` may be
``{"results":[],"error":{...}}`` (``ArrayError``), as the query processor streams them; a
command's 200 names its ``result`` when it declares one; the HTML page is a small viewer of our
own that loads nothing from other hosts.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any, Final

import orjson

from voedger.appdef import (
    ANY,
    AppDef,
    Command,
    DataKind,
    Field,
    Function,
    OperationKind,
    QName,
    Query,
    Role,
    Structure,
    Tag,
    Type,
    TypeKind,
    View,
    Workspace,
)
from voedger.appdef.fields import DEFAULT_MAX_LEN
from voedger.auth.acl import ACL
from voedger.syserror import SysError

__all__ = [
    "DEVELOPER",
    "app_page",
    "openapi_document",
    "published_types",
    "role_document",
    "roles_page",
    "viewer_page",
]

DEVELOPER: Final = QName("sys", "Developer")
"""The global role that sees every workspace and role, published or not."""
_BLOB: Final = QName("sys", "BLOB")
_RAW: Final = QName("sys", "Raw")
_RECORD_OPS: Final = (
    OperationKind.Insert,
    OperationKind.Update,
    OperationKind.Activate,
    OperationKind.Deactivate,
    OperationKind.Select,
)
_TABLE_KINDS: Final = frozenset({TypeKind.CDoc, TypeKind.WDoc, TypeKind.CRecord, TypeKind.WRecord})
_ERROR_REF: Final = "#/components/schemas/Error"
_ARRAY_ERROR_REF: Final = "#/components/schemas/ArrayError"
_ANY_REF: Final = "#/components/schemas/sys.ANY"
_QNAME_PATTERN: Final = "^[a-zA-Z0-9_]+\\.[a-zA-Z0-9_]+$"
_ERROR_TEXTS: Final = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service Unavailable",
}

Fields = tuple[str, ...] | None
"""Fields an operation is allowed on, in the type's order; None: all of them."""

_acl: Final = ACL()


# --- what a role may do ------------------------------------------------------------------------


def _operations(t: Type) -> tuple[OperationKind, ...]:
    if t.kind.is_structure:
        return _RECORD_OPS
    if t.kind is TypeKind.View:
        return (OperationKind.Select,)
    if t.kind.is_function:
        return (OperationKind.Execute,)
    return ()


def published_types(ws: Workspace, role: QName) -> dict[Type, dict[OperationKind, Fields]]:
    """The documents, records, objects, views and functions ``role`` may use in ``ws`` (its own
    rules and its ancestors', with the roles it inherits), by QName, with the operations allowed
    and the fields each is allowed on."""
    roles = frozenset({role})
    found: dict[Type, dict[OperationKind, Fields]] = {}
    for t in ws.types():
        for op in _operations(t):
            d = _acl.decide(ws, roles, op, t.qname)
            if not d.allowed:
                continue
            fields: Fields = None
            if d.allowed_fields is not None and isinstance(t, Structure | View):
                fields = tuple(f.name for f in t.fields if f.name in d.allowed_fields)
            found.setdefault(t, {})[op] = fields
    return found


# --- the HTML pages ---------------------------------------------------------------------------


def _by_package(items: Iterable[Type]) -> dict[str, list[Type]]:
    groups: dict[str, list[Type]] = {}
    for t in items:
        groups.setdefault(t.qname.pkg, []).append(t)
    return {pkg: sorted(groups[pkg], key=lambda t: str(t.qname)) for pkg in sorted(groups)}


def _links(sb: list[str], groups: dict[str, list[Type]], href: str, suffix: str = "") -> None:
    for pkg, items in groups.items():
        sb.append(f"<h2>Package {pkg}</h2><ul>")
        for t in items:
            name = str(t.qname)
            sb.append(f'<li><a href="{html.escape(href + name + suffix)}">{html.escape(name)}</a></li>')
        sb.append("</ul>")


def _roles_of(ws: Workspace) -> tuple[Role, ...]:
    return tuple(t for t in ws.types(TypeKind.Role) if isinstance(t, Role))


def app_page(app: AppDef, app_name: str, developer: bool) -> str:
    """``GET .../schemas``: the workspaces with a published role (all of them for a developer)."""
    sb = [f"<html><head><title>App {app_name} schema</title></head><body><h1>App {app_name} schema</h1>"]
    shown = [ws for ws in app.workspaces() if developer or any(r.published for r in _roles_of(ws))]
    if not shown:
        sb.append("<p>No workspaces found</p>" if developer else "<p>No workspaces with published roles found</p>")
    else:
        _links(sb, _by_package(shown), f"/api/v2/apps/{app_name}/schemas/", "/roles")
    sb.append("</body></html>")
    return "".join(sb)


def _workspace(app: AppDef, name: str) -> Workspace:
    for ws in app.workspaces():
        if str(ws.qname) == name:
            return ws
    raise SysError(404, f"workspace {name} not found")


def roles_page(app: AppDef, app_name: str, workspace: str, developer: bool) -> str:
    """``GET .../schemas/{workspace}/roles``: the roles usable there (published ones only, unless
    the caller is a developer)."""
    ws = _workspace(app, workspace)
    title = "roles" if developer else "published roles"
    sb = [
        f"<html><head><title>App {app_name}: workspace {ws.qname} {title}</title></head><body>"
        f"<h1>App {app_name}</h1><h2>Workspace {ws.qname} {title}</h2>"
    ]
    shown = [r for r in _roles_of(ws) if developer or r.published]
    if not shown:
        sb.append(f"<p>No {title}</p>")
    else:
        _links(sb, _by_package(shown), f"/api/v2/apps/{app_name}/schemas/{ws.qname}/roles/")
    sb.append("</body></html>")
    return "".join(sb)


def role_document(app: AppDef, app_name: str, workspace: str, role: str, developer: bool) -> bytes:
    """``GET .../schemas/{workspace}/roles/{role}``: the OpenAPI document (JSON bytes)."""
    ws = _workspace(app, workspace)
    t = next((r for r in _roles_of(ws) if str(r.qname) == role), None)
    if t is None:
        raise SysError(404, f"role {role} not found in workspace {ws.qname}")
    if not developer and not t.published:
        raise SysError(403, f"role {t.qname} is not published")
    doc = openapi_document(app, ws, t.qname, app_name, developer)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def viewer_page(url: str) -> str:
    """What a browser gets for a role's document: a page that fetches the document as JSON and
    shows its operations (method, path, description, statuses), with the document below."""
    src = html.escape(url, quote=True)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>OpenAPI: {src}</title>
<style>
body{{font-family:sans-serif;margin:2em}} code{{font-weight:bold}} li{{margin:.3em 0}}
pre{{background:#f4f4f4;padding:1em;overflow:auto}}
</style>
</head>
<body>
<h1 id="title">{src}</h1>
<p id="description"></p>
<ul id="operations"></ul>
<details><summary>The document (JSON)</summary><pre id="document"></pre></details>
<script>
fetch("{src}", {{headers: {{Accept: "application/json"}}, credentials: "include"}})
  .then(r => r.json())
  .then(doc => {{
    document.getElementById("title").textContent = doc.info ? doc.info.title : "{src}";
    document.getElementById("description").textContent = doc.info ? doc.info.description || "" : "";
    const list = document.getElementById("operations");
    for (const path of Object.keys(doc.paths || {{}}).sort()) {{
      for (const [method, op] of Object.entries(doc.paths[path])) {{
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = method.toUpperCase() + " " + path;
        li.appendChild(code);
        li.appendChild(document.createTextNode(" " + (op.description || "") +
          " (" + Object.keys(op.responses || {{}}).join(", ") + ")"));
        list.appendChild(li);
      }}
    }}
    document.getElementById("document").textContent = JSON.stringify(doc, null, 2);
  }});
</script>
</body>
</html>
"""


# --- the OpenAPI document ---------------------------------------------------------------------


def _error(status: int, array: bool = False) -> dict[str, Any]:
    """An error answer; ``array``: of a read whose answer is an array (queries, views, cdocs),
    which the owner answers ``{"results":[],"error":{...}}`` and the router, refusing before
    it, plain."""
    schema: dict[str, Any] = {"$ref": _ERROR_REF}
    if array:
        schema = {"anyOf": [schema, {"$ref": _ARRAY_ERROR_REF}]}
    return {
        "description": _ERROR_TEXTS.get(status, "Unknown error"),
        "content": {"application/json": {"schema": schema}},
    }


def _ok(ref: str = "") -> dict[str, Any]:
    if not ref:
        return {"description": "OK"}
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}


def _int64() -> dict[str, Any]:
    return {"type": "integer", "format": "int64"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        s["required"] = required
    return s


class _Generator:
    def __init__(self, app: AppDef, ws: Workspace, role: QName, app_name: str, developer: bool) -> None:
        self.app = app
        self.ws = ws
        self.role = role
        self.owner, _, self.name = app_name.partition("/")
        self.developer = developer
        self.types = published_types(ws, role)
        self.schemas: dict[str, Any] = {}
        self.paths: dict[str, dict[str, Any]] = {}
        self.refs: dict[tuple[QName, OperationKind], str] = {}
        """The component name of each (type, operation) generated."""
        self.tables: dict[QName, dict[OperationKind, bool]] = {
            t.qname: {op: fields is not None for op, fields in ops.items()}
            for t, ops in self.types.items()
            if t.kind.is_record
        }
        """Documents and records the role may use: the operations, and whether each is limited to
        some fields (then its component is ``<type>_<Operation>``)."""

    # components

    def table_ref(self, table: QName, op: OperationKind) -> str | None:
        ops = self.tables.get(table)
        if ops is None or op not in ops:
            return None
        return f"#/components/schemas/{table}_{op}" if ops[op] else f"#/components/schemas/{table}"

    def ref(self, q: QName | None, op: OperationKind) -> str:
        if q is None:
            return _ANY_REF
        return f"#/components/schemas/{self.refs.get((q, op), str(q))}"

    def field_schema(self, f: Field, op: OperationKind) -> dict[str, Any]:
        if f.is_ref:
            one_of: list[dict[str, Any]] = [_int64()]
            names: list[str] = []
            if op is OperationKind.Select:
                for target in f.refs:
                    ref = self.table_ref(target, op)
                    if ref is not None:
                        one_of.append({"$ref": ref})
                        names.append(str(target))
            if len(one_of) > 1:
                return {"oneOf": one_of, "description": f"ID of: {', '.join(names)}"}
            return {**_int64(), "description": "Reference to a document or record"}
        k = f.kind
        s: dict[str, Any]
        if k is DataKind.int32 or k is DataKind.int8 or k is DataKind.int16:
            s = {"type": "integer", "format": "int32"}
        elif k is DataKind.int64 or k is DataKind.RecordID:
            s = _int64()
        elif k is DataKind.float32:
            s = {"type": "number", "format": "float"}
        elif k is DataKind.float64:
            s = {"type": "number", "format": "double"}
        elif k is DataKind.bool:
            s = {"type": "boolean"}
        elif k is DataKind.string:
            s = {"type": "string", "maxLength": f.max_len or DEFAULT_MAX_LEN}
        elif k is DataKind.bytes:
            s = {"type": "string", "format": "byte", "maxLength": f.max_len or DEFAULT_MAX_LEN}
        elif k is DataKind.QName:
            s = {"type": "string", "pattern": _QNAME_PATTERN, "example": "app1pkg.MyType"}
        else:
            s = {"type": "string"}
        if f.comment:
            s["description"] = f.comment
        return s

    def schema(self, t: Structure | View, op: OperationKind, fields: Fields) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in t.fields:
            if fields and f.name not in fields:
                continue
            properties[f.name] = self.field_schema(f, op)
            if f.required:
                required.append(f.name)
        if isinstance(t, Structure):
            for c in t.containers:
                ref = self.table_ref(c.type, op)
                if ref is None:
                    continue  # the role may not use that table this way
                properties[c.name] = {
                    "type": "array",
                    "items": {"$ref": ref},
                    "minItems": c.min_occurs,
                    "maxItems": c.max_occurs,
                }
        s = _object(properties, required)
        if t.comment:
            s["description"] = t.comment
        return s

    def component(self, t: Type, op: OperationKind, fields: Fields) -> None:
        name = f"{t.qname}_{op}" if fields else str(t.qname)
        self.refs[(t.qname, op)] = name
        if not isinstance(t, Structure | View):
            return
        self.schemas[name] = self.schema(t, op, fields)
        if t.kind in (TypeKind.ODoc, TypeKind.ORecord) and isinstance(t, Structure):
            for c in t.containers:
                nested = self.app.find(c.type)
                if nested is not None:
                    self.component(nested, op, None)

    def components(self) -> dict[str, Any]:
        for t, ops in self.types.items():
            for op, fields in ops.items():
                self.component(t, op, fields)
                if op is OperationKind.Execute and isinstance(t, Function):
                    for q in (t.param, t.result):
                        typ = self.app.find(q) if q is not None and q != ANY.qname else None
                        if typ is not None:
                            self.component(typ, op, None)
        self.schemas["sys.ANY"] = {"type": "object"}
        self.schemas["Error"] = _object(
            {
                "message": {"type": "string"},
                "status": {"type": "integer"},
                "qname": {"type": "string"},
                "data": {"type": "string"},
            },
            ["message"],
        )
        self.schemas["ArrayError"] = _object(
            {"results": {"type": "array", "maxItems": 0, "items": {}}, "error": {"$ref": _ERROR_REF}},
            ["results", "error"],
        )
        self.schemas["CreateDeviceResult"] = _object(
            {"login": {"type": "string"}, "password": {"type": "string"}, "profileWSID": _int64()}
        )
        self.schemas["PrincipalToken"] = _object(
            {"principalToken": {"type": "string"}, "expiresInSeconds": _int64(), "profileWSID": _int64()}
        )
        self.schemas["BlobCreateResult"] = _object({"blobID": _int64()}, ["blobID"])
        return {
            "securitySchemes": {
                "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "CookieAuth": {"type": "apiKey", "in": "cookie", "name": "Authorization"},
            },
            "schemas": self.schemas,
        }

    # paths

    def base(self) -> str:
        return f"/apps/{self.owner}/{self.name}"

    def ws_path(self, rest: str) -> str:
        return f"{self.base()}/workspaces/{{wsid}}/{rest}"

    def tags(self, t: Type) -> list[str]:
        found = []
        for q in t.tags:
            tag = self.app.find(q)
            if isinstance(tag, Tag) and tag.feature:
                found.append(tag.feature)
        return found or [t.qname.pkg]

    def parameters(self, path: str, t: Type | None) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = []
        if "{wsid}" in path:
            params.append(
                {
                    "name": "wsid",
                    "in": "path",
                    "required": True,
                    "schema": _int64(),
                    "description": "The ID of workspace",
                }
            )
        if "{id}" in path and t is not None:
            params.append(
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": _int64(),
                    "description": f"ID of the {t.qname}",
                },
            )
        if t is not None and any(f"/{p}/" in path for p in ("views", "queries", "cdocs")):
            key = [f.name for f in t.partition_key] if isinstance(t, View) else []
            where = "A JSON-encoded string used to filter query results. The value must be URL-encoded"
            if key:
                where += f". Required fields: {', '.join(key)}"
            params.append(
                {
                    "name": "where",
                    "in": "query",
                    "required": bool(key),
                    "schema": {"type": "string"},
                    "description": where,
                    "example": '{"Country": "Spain", "Age": {"$gt": 30}}',
                }
            )
            for name, kind, text in (
                ("order", "string", "Field to order results by"),
                ("limit", "integer", "Maximum number of results to return"),
                ("skip", "integer", "Number of results to skip"),
                ("include", "string", "Referenced objects to include in response"),
                ("keys", "string", "Specific fields to include in response"),
            ):
                params.append(
                    {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": text}
                )
        if t is not None and "/queries/" in path and isinstance(t, Query) and t.param is not None:
            arg: dict[str, Any] = (
                {"type": "string"} if t.param == _RAW else {"$ref": self.ref(t.param, OperationKind.Execute)}
            )
            params.append(
                {
                    "name": "args",
                    "in": "query",
                    "required": True,
                    "schema": arg,
                    "description": "Query argument in JSON",
                },
            )
        return params

    def description(self, t: Type, op: OperationKind, cdocs: bool) -> str:
        if t.comment:
            return t.comment
        name = str(t.qname)
        if t.kind is TypeKind.Command:
            return f"Executes {name}"
        if t.kind is TypeKind.Query:
            return f"Selects from query {name}"
        if t.kind is TypeKind.View:
            return f"Selects from view {name}"
        if t.kind is TypeKind.CDoc and op is OperationKind.Select:
            return f"Reads the collection of {name}" if cdocs else f"Reads {name}"
        what = "document" if t.kind.is_doc else "record"
        verbs = {
            OperationKind.Insert: "Creates",
            OperationKind.Update: "Updates",
            OperationKind.Deactivate: "Deactivates",
            OperationKind.Select: "Reads",
        }
        return f"{verbs[op]} {what} {name}" if op in verbs else f"Operation {op} on {name}"

    def request_body(self, t: Type, op: OperationKind) -> dict[str, Any]:
        if isinstance(t, Command):
            properties: dict[str, Any] = {}
            param = self.app.find(t.param) if t.param is not None else None
            if isinstance(param, Structure) and param.kind is TypeKind.ODoc:
                properties["args"] = self.schema(param, op, None)
            elif t.param is not None:
                properties["args"] = {"$ref": self.ref(t.param, op)}
            unlogged = self.app.find(t.unlogged_param) if t.unlogged_param is not None else None
            if isinstance(unlogged, Structure):
                properties["unloggedArgs"] = self.schema(unlogged, op, None)
            return _json_body(_object(properties))
        return _json_body({"$ref": self.ref(t.qname, op)})

    def results(self, ref: str) -> dict[str, Any]:
        return {
            "description": "OK",
            "content": {
                "application/json": {
                    "schema": _object(
                        {"results": {"type": "array", "items": {"$ref": ref}}, "error": {"$ref": _ERROR_REF}}
                    )
                }
            },
        }

    def responses(self, t: Type, op: OperationKind, area: str) -> dict[str, Any]:
        array = (area in ("cdocs", "views") and op is OperationKind.Select) or (
            op is OperationKind.Execute and isinstance(t, Query)
        )
        r: dict[str, Any] = {str(s): _error(s, array) for s in (401, 403, 404)}
        offset = {"currentWLogOffset": {"type": "integer"}}
        if op is OperationKind.Insert:
            created = {
                **offset,
                "newIDs": {"type": "object", "additionalProperties": _int64()},
            }
            r["201"] = {"description": "Created", "content": {"application/json": {"schema": _object(created)}}}
            r["400"] = _error(400)
        elif op in (OperationKind.Update, OperationKind.Deactivate):
            r["200"] = {"description": "OK", "content": {"application/json": {"schema": _object(dict(offset))}}}
        elif op is OperationKind.Execute and isinstance(t, Command):
            answer: dict[str, Any] = dict(offset)
            if t.result is not None:
                answer["result"] = {"$ref": self.ref(t.result, op) if t.result != ANY.qname else _ANY_REF}
            r["200"] = {"description": "OK", "content": {"application/json": {"schema": _object(answer)}}}
            r["400"] = _error(400)
        elif area == "docs" and op is OperationKind.Select and t.kind.is_record:
            r["200"] = _ok(self.ref(t.qname, op))
        elif area in ("cdocs", "views") and op is OperationKind.Select and t.kind in (TypeKind.CDoc, TypeKind.View):
            r["200"] = self.results(self.ref(t.qname, op))
        elif op is OperationKind.Execute and isinstance(t, Query):
            if t.result is None:
                r["200"] = _ok()
            else:
                r["200"] = self.results(_ANY_REF if t.result == ANY.qname else self.ref(t.result, op))
        return r

    def operation(self, path: str, method: str, t: Type, op: OperationKind, area: str) -> None:
        o: dict[str, Any] = {
            "tags": self.tags(t),
            "description": self.description(t, op, area == "cdocs"),
            "security": [{"BearerAuth": []}],
        }
        params = self.parameters(path, t)
        if params:
            o["parameters"] = params
        if method in ("post", "patch", "put"):
            o["requestBody"] = self.request_body(t, op)
        o["responses"] = self.responses(t, op, area)
        self.paths.setdefault(path, {})[method] = o

    def type_paths(self, t: Type, op: OperationKind) -> None:
        q = t.qname
        if t.kind in _TABLE_KINDS:
            if op is OperationKind.Insert:
                self.operation(self.ws_path(f"docs/{q}"), "post", t, op, "docs")
            elif op is OperationKind.Update:
                self.operation(self.ws_path(f"docs/{q}/{{id}}"), "patch", t, op, "docs")
            elif op is OperationKind.Deactivate:
                self.operation(self.ws_path(f"docs/{q}/{{id}}"), "delete", t, op, "docs")
            elif op is OperationKind.Select:
                self.operation(self.ws_path(f"docs/{q}/{{id}}"), "get", t, op, "docs")
                self.operation(self.ws_path(f"cdocs/{q}"), "get", t, op, "cdocs")
        elif isinstance(t, Command) and op is OperationKind.Execute:
            self.operation(self.ws_path(f"commands/{q}"), "post", t, op, "commands")
        elif isinstance(t, Query) and op is OperationKind.Execute:
            self.operation(self.ws_path(f"queries/{q}"), "get", t, op, "queries")
        elif isinstance(t, View) and op is OperationKind.Select:
            self.operation(self.ws_path(f"views/{q}"), "get", t, op, "views")

    def blob_paths(self, t: Structure, ops: dict[OperationKind, Fields]) -> None:
        """Download and upload paths for the BLOB fields the role may read or write."""
        can_read = OperationKind.Select in ops
        read = ops.get(OperationKind.Select)
        can_write = False
        write: Fields = None
        for op in (OperationKind.Insert, OperationKind.Update):
            if op in ops:
                if not can_write or ops[op]:
                    write = ops[op]  # some fields only, if either operation is limited
                can_write = True
        for f in t.fields:
            if _BLOB not in f.refs:
                continue
            if can_read and (not read or f.name in read):
                self.blob_read(t, f.name)
            if can_write and (not write or f.name in write):
                self.blob_create(t, f.name)

    def errors(self, *statuses: int) -> dict[str, Any]:
        return {str(s): _error(s) for s in statuses}

    def blob_create(self, t: Structure, field: str) -> None:
        path = self.ws_path(f"docs/{t.qname}/blobs/{field}")
        params = [
            *self.parameters(path, t),
            {"name": "Content-Type", "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": "Blob-Name", "in": "header", "required": False, "schema": {"type": "string"}},
        ]
        params[-2]["description"] = "BLOB content type"
        params[-1]["description"] = "BLOB name, optional"
        self.paths.setdefault(path, {})["post"] = {
            "description": f"Creates a new BLOB for field '{field}' of {t.qname}",
            "tags": self.tags(t),
            "security": [{"BearerAuth": []}],
            "parameters": params,
            "requestBody": {
                "required": True,
                "description": "BLOB binary data",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "201": {
                    "description": "BLOB created successfully",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BlobCreateResult"}}},
                },
                **self.errors(400, 401, 403, 413, 415, 429, 500, 503),
            },
        }

    def blob_read(self, t: Structure, field: str) -> None:
        path = self.ws_path(f"docs/{t.qname}/{{id}}/blobs/{field}")
        self.paths.setdefault(path, {})["get"] = {
            "description": f"Downloads BLOB from field '{field}' of {t.qname}",
            "tags": self.tags(t),
            "security": [{"BearerAuth": []}, {"CookieAuth": []}],
            "parameters": self.parameters(path, t),
            "responses": {
                "200": {
                    "description": "BLOB binary data",
                    "headers": {
                        "Content-Type": {"description": "BLOB content type", "schema": {"type": "string"}},
                        "Blob-Name": {"description": "BLOB name", "schema": {"type": "string"}},
                    },
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                **self.errors(400, 401, 403, 404, 429, 500, 503),
            },
        }

    def identity_paths(self) -> None:
        login = _object({"login": {"type": "string"}, "password": {"type": "string"}}, ["login", "password"])
        self.paths[f"{self.base()}/auth/login"] = {
            "post": {
                "description": "Issues (creates) a new principal token in exchange for valid credentials",
                "tags": ["Authentication"],
                "requestBody": _json_body(login),
                "responses": {
                    "200": _ok("#/components/schemas/PrincipalToken"),
                    **self.errors(400, 401, 429),
                },
            }
        }
        self.paths[f"{self.base()}/auth/refresh"] = {
            "post": {
                "description": "Returns a refreshed principal token",
                "security": [{"BearerAuth": []}],
                "tags": ["Authentication"],
                "responses": {
                    "200": _ok("#/components/schemas/PrincipalToken"),
                    **self.errors(400, 401, 403, 429),
                },
            }
        }
        if not self.developer:
            return
        user = _object(
            {
                "verifiedEmailToken": {"type": "string"},
                "password": {"type": "string"},
                "displayName": {"type": "string"},
            },
            ["verifiedEmailToken", "password", "displayName"],
        )
        self.paths[f"{self.base()}/users"] = {
            "post": {
                "description": "Register a new user with the provided details",
                "tags": ["Users"],
                "requestBody": _json_body(user),
                "responses": {"201": _ok(), **self.errors(400, 401, 429)},
            }
        }
        self.paths[f"{self.base()}/devices"] = {
            "post": {
                "description": "Create(register) new device",
                "security": [{"BearerAuth": []}],
                "tags": ["Devices"],
                "requestBody": _json_body(_object({"displayName": {"type": "string"}}, ["displayName"])),
                "responses": {
                    "201": _ok("#/components/schemas/CreateDeviceResult"),
                    **self.errors(400, 401, 403, 429),
                },
            }
        }

    def document(self, title: str, description: str) -> dict[str, Any]:
        components = self.components()
        self.identity_paths()
        for t, ops in self.types.items():
            for op in ops:
                self.type_paths(t, op)
            if isinstance(t, Structure) and t.kind.is_record:
                self.blob_paths(t, ops)
        return {
            "openapi": "3.0.0",
            "info": {
                "title": title,
                "version": "1.0.0",
                "contact": {"name": self.owner},
                "description": description,
            },
            "externalDocs": {
                "description": "Powered by Voedger: distributed cloud application platform",
                "url": "https://voedger.io",
            },
            "servers": [{"url": "/api/v2"}],
            "paths": self.paths,
            "components": components,
        }


def openapi_document(app: AppDef, ws: Workspace, role: QName, app_name: str, developer: bool) -> dict[str, Any]:
    """The OpenAPI 3.0 document of what ``role`` may do in workspaces of kind ``ws`` of the
    application ``app_name`` (``owner/name``); the paths are relative to the server's ``/api/v2``."""
    t = app.find(role)
    g = _Generator(app, ws, role, app_name, developer)
    name = app_name.partition("/")[2]
    return g.document(f"{name}: {role.entity} OpenAPI 3.0", t.comment if t is not None else "")
