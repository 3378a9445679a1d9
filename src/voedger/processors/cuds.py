"""Turning a command's JSON (arguments, unlogged arguments, CUDs) into checked operations.

Everything here raises :class:`SysError` with the status Voedger gives (400 for a malformed or
invalid request, 404 for an unknown record, 403 for a forbidden change), and a message that
names the place (``cuds[2]: ...``) and the problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voedger.appdef import (
    SYS_CONTAINER,
    SYS_ID,
    SYS_IS_ACTIVE,
    SYS_PARENT_ID,
    SYS_QNAME,
    AppDef,
    DataKind,
    Field,
    QName,
    QNameError,
    Structure,
    TypeKind,
    Workspace,
)
from voedger.structs import ids
from voedger.structs.values import ValidationError, coerce
from voedger.syserror import SysError

MAX_CUDS = 100
CUD_KINDS = frozenset({TypeKind.CDoc, TypeKind.WDoc, TypeKind.CRecord, TypeKind.WRecord})
Record = dict[str, Any]
RecordReader = Callable[[int], Awaitable[Record | None]]
QNameReader = Callable[[int], Awaitable[str | None]]
"""The QName of the record with an ID in the workspace, or None if there is none."""
ERR_REF_INTEGRITY = "referential integrity violation"


def bad(message: str) -> SysError:
    return SysError(400, message)


def raw_id_twice(where: str, raw_id: int) -> SysError:
    """Two new records of one event's CUDs under one raw ID: a 409, as Voedger answers its
    "record ID duplicates" when it builds the event, whether the client's CUDs or an extension's
    intents did it. (Records of an ODoc's arguments are checked as the arguments are read: 400.)"""
    return SysError(409, f"{where}: raw ID {raw_id} is used twice")


def _not_a_number(where: str, value: Any) -> SysError | None:
    """Voedger's 400 for a ``sys.ID`` that is no JSON number (a string, a boolean, an array or an
    object); None for a number or null, which are checked as an ID next."""
    if isinstance(value, bool) or not isinstance(value, int | float | None):
        return _at(where, f'field "{SYS_ID}" must be json.Number: field type mismatch')
    return None


def _at(where: str, message: str) -> SysError:
    """A 400 naming its place; the root of an API v2 document body is a place with no name."""
    return bad(f"{where}: {message}" if where else message)


@dataclass
class Create:
    raw_id: int
    type: Structure
    fields: Record
    where: str


@dataclass
class Update:
    id: int
    type: Structure
    changes: Record
    where: str
    activation: bool | None = None
    """True/False when the update only (de)activates the record."""
    before: Record = field(default_factory=dict)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"{where}: expected a JSON object")
    return value


def _qname(value: Any, where: str) -> QName:
    if not isinstance(value, str):
        raise bad(f"{where}: sys.QName must be a string")
    if value.count(".") != 1:  # Voedger's words, for a missing name too
        raise bad(f"{where}: failed to parse sys.QName: convert error: string «{value}» to qualified name")
    try:
        return QName.parse(value)
    except QNameError as exc:
        raise bad(f"{where}: failed to parse sys.QName: {exc}") from None


def _row_name(t: Structure, container: Any = None) -> str:
    """A record or object as Voedger's validator names it: ``CDoc «pkg.Doc»``, with its container
    ``CRecord «Lines: pkg.Line»``, an argument ``Object «pkg.Params»``."""
    return f"{t.kind} «{container}: {t.qname}»" if container else f"{t.kind} «{t.qname}»"


def _verified_value_token(owner: QName, f: Field, raw: Any) -> str:
    """What a client gives a VERIFIABLE field: a verified value token, longer than the field may
    be. Its length and pattern are checked on the value the token proves, once the command
    processor has verified it (``_verify_fields``), as Voedger checks them."""
    if not isinstance(raw, str):
        raise ValidationError(f"{owner} field «{f.name}»: expected a verified value token, got {type(raw).__name__}")
    return raw


def _user_fields(
    t: Structure, fields: Mapping[str, Any], where: str, *, creating: bool, container: Any = None
) -> Record:
    """Check and convert the non-system fields a client sent.

    A required field that is missing (on a create), null or empty (a string or bytes of length 0,
    a reference to ID 0) is refused in Voedger's words, every such field of the record at once,
    a line each (``field is empty: CDoc «pkg.Doc» string-field «Name»: validate error code 4``)."""
    out: Record = {}
    empty: set[str] = set()
    for name, raw in fields.items():
        if name.startswith("sys."):
            continue
        f = t.field(name)
        if f is None:
            raise _at(where, f"{t.qname} has no field «{name}»")
        if raw is None:
            if f.required:
                empty.add(name)
            continue
        try:
            out[name] = _verified_value_token(t.qname, f, raw) if f.verifiable else coerce(t.qname, f, raw)
        except ValidationError as exc:
            raise _at(where, str(exc)) from None
        if f.required and out[name] in ("", b"", 0) and f.kind in (DataKind.string, DataKind.bytes, DataKind.RecordID):
            empty.add(name)
    problems = []
    row = _row_name(t, container)
    for f in t.user_fields:
        if not f.required or (f.name not in empty and (f.name in out or not creating)):
            continue
        if f.kind is DataKind.RecordID and f.name in out:
            problems.append(
                f"wrong record ID: {row} required ref field «{f.name}» has NullRecordID value: validate error code 6"
            )
        else:
            problems.append(f"field is empty: {row} {f.kind}-field «{f.name}»: validate error code 4")
    if problems:
        raise _at(where, "\n".join(problems))
    return out


def check_fields(
    t: Structure, fields: Mapping[str, Any], where: str, *, creating: bool, container: str | None = None
) -> Record:
    """Check field values against a table's declaration (the checks a CUD gets); SysError 400."""
    return _user_fields(t, fields, where, creating=creating, container=container)


def parse_cuds(
    app: AppDef, ws: Workspace, body_cuds: Any
) -> tuple[list[Create], list[tuple[int, Mapping[str, Any], str]]]:
    """Split the client's ``cuds`` into creates (checked) and raw updates (checked later against
    the stored records)."""
    if not isinstance(body_cuds, list):
        raise bad("cuds: expected an array")
    if len(body_cuds) > MAX_CUDS:
        raise bad(f"too many cuds: {len(body_cuds)} in the request, at most {MAX_CUDS} allowed")
    creates: list[Create] = []
    updates: list[tuple[int, Mapping[str, Any], str]] = []
    seen_raw: set[int] = set()
    for i, item in enumerate(body_cuds):
        where = f"cuds[{i}]"
        cud = _object(item, where)
        unknown = sorted(set(cud) - {"fields", SYS_ID})
        if unknown:
            raise bad(f'{where}: unexpected key(s) {", ".join(unknown)}; a CUD has "fields" and, to update, "sys.ID"')
        if "fields" not in cud:
            raise bad(f'{where}: "fields" missing')
        fields = _object(cud["fields"], f"{where}.fields")
        if SYS_ID in cud:
            rid = cud[SYS_ID]
            if (err := _not_a_number(where, rid)) is not None:
                raise err
            if not isinstance(rid, int) or rid <= 0:
                raise bad(f"{where}: sys.ID must be a positive number")
            updates.append((rid, fields, where))  # system fields are checked against the record
            continue
        if SYS_ID not in fields:
            raise bad(f'{where}: "sys.ID" field missing')
        raw_id = fields[SYS_ID]
        if (err := _not_a_number(where, raw_id)) is not None:
            raise err
        if not isinstance(raw_id, int) or not ids.is_raw_id(raw_id):
            raise bad(f"{where}: sys.ID of a new record must be a raw ID from 1 to {ids.MAX_RAW_RECORD_ID}")
        if raw_id in seen_raw:
            raise raw_id_twice(where, raw_id)
        seen_raw.add(raw_id)
        qn = _qname(fields.get(SYS_QNAME, ""), where)
        t = _table(app, ws, qn, where)
        data = _user_fields(t, fields, where, creating=True, container=fields.get(SYS_CONTAINER))
        _check_new_active(fields, where)
        if t.kind in (TypeKind.CRecord, TypeKind.WRecord):
            for sys_field in (SYS_PARENT_ID, SYS_CONTAINER):
                if sys_field in fields:
                    data[sys_field] = fields[sys_field]
        creates.append(Create(raw_id, t, data, where))
    return creates, updates


def _check_new_active(fields: Mapping[str, Any], where: str) -> None:
    """A new record is active: ``sys.IsActive`` may only say so (Voedger refuses false with 403)."""
    active = fields.get(SYS_IS_ACTIVE, True)
    if active is False:
        raise SysError(403, "inserting a deactivated record is not allowed")
    if active is not True:
        raise _at(where, f"sys.IsActive must be true or false, not {active!r}")


def _check_system_fields(t: Structure, before: Record, fields: Mapping[str, Any], where: str) -> None:
    """An update may name the record's own system fields with their values, never change them."""
    unchanged = {
        SYS_ID: before.get(SYS_ID),
        SYS_QNAME: before.get(SYS_QNAME),
        SYS_PARENT_ID: before.get(SYS_PARENT_ID) or 0,
        SYS_CONTAINER: before.get(SYS_CONTAINER) or "",
    }
    for name in (SYS_QNAME, SYS_ID, SYS_PARENT_ID, SYS_CONTAINER):
        if name not in fields:
            continue
        value = fields[name]
        if name in (SYS_PARENT_ID, SYS_CONTAINER) and value in (0, "", None):
            continue  # an empty value changes nothing (as in Voedger)
        if value != unchanged[name] or isinstance(value, bool):
            raise _at(where, f"unable to update system field: {_row_name(t, before.get(SYS_CONTAINER))} {name}")


def _table(app: AppDef, ws: Workspace, qn: QName, where: str) -> Structure:
    t = app.find(qn)
    if not isinstance(t, Structure) or t.kind not in CUD_KINDS | {TypeKind.ODoc, TypeKind.ORecord}:
        raise bad(f"{where}: {qn} is not a table")
    if t.kind in (TypeKind.ODoc, TypeKind.ORecord):
        raise bad(f"{where}: {qn} is an ODoc or ORecord: it can only be sent as a command argument")
    if t.abstract:
        raise bad(f"{where}: {qn} is abstract")
    if not ws.has_type(qn):
        raise bad(f"{where}: table {qn} does not exist in workspace {ws.qname}")
    return t


async def check_update(
    app: AppDef, raw_id: int, fields: Mapping[str, Any], where: str, read: RecordReader, *, intent: bool = False
) -> Update:
    """Check an update against the record it changes. An extension's intent may change
    ``sys.IsActive`` together with other fields (as in Voedger, where only a request's CUDs may
    not mix them)."""
    before = await read(raw_id)
    if before is None:
        raise SysError(404, f"{where}: record with queried id {raw_id} does not exist")
    t = app.find(before[SYS_QNAME])
    if not isinstance(t, Structure):
        raise bad(f"{where}: record {raw_id} is of unknown type {before[SYS_QNAME]}")
    if SYS_IS_ACTIVE in fields:
        active = fields[SYS_IS_ACTIVE]
        if not isinstance(active, bool):
            raise bad(f"{where}: sys.IsActive must be true or false")
        others = {name: v for name, v in fields.items() if not name.startswith("sys.")}
        if others and not intent:
            raise SysError(403, "updating other fields is not allowed if sys.IsActive is updating")
        _check_system_fields(t, before, fields, where)
        container = before.get(SYS_CONTAINER)
        changes: dict[str, Any] = _user_fields(t, others, where, creating=False, container=container) if others else {}
        changes[SYS_IS_ACTIVE] = active
        return Update(raw_id, t, changes, where, activation=active, before=before)
    _check_system_fields(t, before, fields, where)
    if not fields:
        raise bad(f"{where}: nothing to update")
    changes = _user_fields(t, fields, where, creating=False, container=before.get(SYS_CONTAINER))
    return Update(raw_id, t, changes, where, before=before)


def parse_object(
    app: AppDef, t: Structure, raw: Any, where: str, allow_raw_ids: bool, container: str | None = None
) -> Record:
    """Check an argument object (TYPE or ODoc with nested records) and return it as stored.

    ODoc and ORecord IDs stay raw here; the processor assigns real IDs.
    """
    obj = _object(raw, where)
    fields = {k: v for k, v in obj.items() if t.container(k) is None}
    out = _user_fields(t, fields, where, creating=True, container=container)
    out[SYS_QNAME] = str(t.qname)
    if t.kind in (TypeKind.ODoc, TypeKind.ORecord):
        rid = obj.get(SYS_ID)
        if isinstance(rid, bool) or not isinstance(rid, int) or not ids.is_raw_id(rid):
            raise bad(f"{where}: {t.qname} needs sys.ID, a raw ID from 1 to {ids.MAX_RAW_RECORD_ID}")
        out[SYS_ID] = rid
    names = {c.name for c in t.containers}
    for key in obj:
        if key.startswith("sys.") or t.field(key) is not None:
            continue
        if key not in names:
            raise bad(f"{where}: {t.qname} has no field or container «{key}»")
    for c in t.containers:
        items = obj.get(c.name, [])
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise bad(f"{where}.{c.name}: expected an array")
        if len(items) < c.min_occurs:
            raise bad(
                f"{where}: {t.qname} container «{c.name}» has not enough occurrences "
                f"({len(items)}, minimum {c.min_occurs})"
            )
        if len(items) > c.max_occurs:
            raise bad(
                f"{where}: {t.qname} container «{c.name}» has too many occurrences "
                f"({len(items)}, maximum {c.max_occurs})"
            )
        child_t = app.find(c.type)
        if not isinstance(child_t, Structure):
            raise bad(f"{where}: container «{c.name}» has unknown type {c.type}")
        children = []
        for j, item in enumerate(items):
            child = parse_object(app, child_t, item, f"{where}.{c.name}[{j}]", allow_raw_ids, c.name)
            child[SYS_CONTAINER] = c.name
            if SYS_ID in out:
                child[SYS_PARENT_ID] = out[SYS_ID]
            children.append(child)
        if children:
            out[c.name] = children
    return out


def document_cuds(app: AppDef, t: Structure, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Turn the body of an API v2 ``POST docs/{table}`` into the creates of one ``c.sys.CUD``.

    The body holds the record's fields and, under the name of each of its containers, an array
    of nested records, which may hold containers of their own. Every record becomes a create:
    the document first, each nested record after its parent, in the order of the body (depth
    first), with ``sys.ParentID`` (its parent's raw ID) and ``sys.Container`` set. A record takes
    the raw ID its body gives in ``sys.ID`` or else the next one counted from 1, as in Voedger.

    Checks what the body's shape decides (names, arrays, objects, raw IDs, field values) and
    raises a 400 naming the place (``Barcodes[1]: ...``; nothing for the document itself); what
    depends on stored data is checked by the command as for any CUD.
    """
    out = _DocumentCUDs(app)
    out.add(t, body, "", None)
    return out.cuds


@dataclass
class _DocumentCUDs:
    app: AppDef
    cuds: list[dict[str, Any]] = field(default_factory=list)
    given: dict[int, str] = field(default_factory=dict)
    """Raw IDs taken so far, each with the place of its record ("" for the document)."""
    next_raw: int = ids.MIN_RAW_RECORD_ID

    def add(self, t: Structure, body: Mapping[str, Any], where: str, parent: tuple[int, str] | None) -> None:
        if len(self.cuds) == MAX_CUDS:
            raise bad(f"too many records: a document with its nested records may have at most {MAX_CUDS}")
        for sys_field in (SYS_QNAME, SYS_PARENT_ID, SYS_CONTAINER):
            if sys_field in body:
                raise _at(where, f"{sys_field} is set by the platform, not in the body")
        own: Record = {}
        nested: list[tuple[str, Structure, list[Any]]] = []
        for key, value in body.items():
            if key.startswith("sys.") or t.field(key) is not None:
                own[key] = value
                continue
            c = t.container(key)
            if c is None:
                raise _at(where, f"{t.qname} has no field or container «{key}»")
            if value is None:
                continue  # as for a field: nothing given
            if not isinstance(value, list):
                raise _at(
                    where, f"{t.qname} container «{key}» takes an array of {c.type} records, not {_json_kind(value)}"
                )
            if not c.min_occurs <= len(value) <= c.max_occurs:
                raise _at(
                    where,
                    f"{t.qname} container «{key}» takes {c.min_occurs} to {c.max_occurs} records, not {len(value)}",
                )
            child_t = self.app.find(c.type)
            if not isinstance(child_t, Structure):
                raise _at(where, f"{t.qname} container «{key}» has unknown type {c.type}")
            nested.append((key, child_t, value))
        check_fields(t, own, where, creating=True, container=parent[1] if parent else None)
        _check_new_active(own, where)
        raw_id = self._raw_id(own, where)
        fields: Record = {**own, SYS_ID: raw_id, SYS_QNAME: str(t.qname)}
        if parent is not None:
            fields[SYS_PARENT_ID], fields[SYS_CONTAINER] = parent
        self.cuds.append({"fields": fields})
        for name, child_t, items in nested:
            prefix = f"{where}.{name}" if where else name
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise bad(f"{prefix}[{i}]: a record is a JSON object, not {_json_kind(item)}")
                self.add(child_t, item, f"{prefix}[{i}]", (raw_id, name))

    def _raw_id(self, own: Record, where: str) -> int:
        if SYS_ID in own:
            raw_id = own[SYS_ID]
            if (err := _not_a_number(where, raw_id)) is not None:
                raise err
            if not isinstance(raw_id, int) or not ids.is_raw_id(raw_id):
                raise _at(where, f"sys.ID of a new record must be a raw ID from 1 to {ids.MAX_RAW_RECORD_ID}")
        else:
            raw_id = self.next_raw
            self.next_raw += 1
        if raw_id in self.given:
            other = self.given[raw_id] or "the document"
            raise _at(where, f"raw ID {raw_id} is already taken by {other}; give each record its own sys.ID, or none")
        self.given[raw_id] = where
        return raw_id


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


# --- references --------------------------------------------------------------------------------


def dangling_reference(target: int, t: QName, field_name: str) -> SysError:
    """A reference to a record the workspace does not have (Voedger's text, 400)."""
    return bad(f"{ERR_REF_INTEGRITY}: record ID {target} referenced by {t}.{field_name} does not exist")


def misdirected_reference(target: int, t: QName, field_name: str, actual: str, allowed: Iterable[QName]) -> SysError:
    """A reference to a record of a table the field does not allow (Voedger's text, 400)."""
    names = " ".join(sorted(map(str, allowed)))
    return bad(
        f"{ERR_REF_INTEGRITY}: record ID {target} referenced by {t}.{field_name} is of QName {actual} "
        f"whereas [{names}] QNames are only allowed"
    )


async def check_refs(t: Structure, rec: Mapping[str, Any], qname_of: QNameReader, created: Mapping[int, str]) -> None:
    """Every reference of a record names a record of the workspace (or one ``created`` by this
    request) of a table the field allows. Raw IDs (not resolved yet) and zero are not checked."""
    for f in t.ref_fields:
        v = rec.get(f.name)
        if not v or not isinstance(v, int) or ids.is_raw_id(v):
            continue
        qn = created.get(v)
        if qn is None:
            qn = await qname_of(v)
        if qn is None:
            raise dangling_reference(v, t.qname, f.name)
        if f.refs and QName.parse(qn) not in f.refs:
            raise misdirected_reference(v, t.qname, f.name, qn, f.refs)


async def check_object_refs(app: AppDef, t: Structure, obj: Mapping[str, Any], qname_of: QNameReader) -> None:
    """The references of an argument object and of the records nested in its containers, as
    Voedger checks them before a command runs."""
    if t.ref_fields:
        await check_refs(t, obj, qname_of, {})
    for c in t.containers:
        children = obj.get(c.name)
        if not isinstance(children, list):
            continue
        child_t = app.find(c.type)
        if not isinstance(child_t, Structure):
            continue
        for child in children:
            if isinstance(child, dict):
                await check_object_refs(app, child_t, child, qname_of)


def command_result(app: AppDef, command: QName, result_type: QName | None, raw: dict[str, Any]) -> Record:
    """A command extension's result, checked against its declared type. A result that breaks
    the type is the extension's fault, not the client's: 500, as Voedger answers."""
    if result_type is None:
        raise SysError(500, f"command {command} returns nothing but its extension set a result")
    t = app.find(result_type)
    if not isinstance(t, Structure):
        return raw
    try:
        return parse_object(app, t, raw, "result", allow_raw_ids=False)
    except SysError as err:
        raise SysError(500, f"command {command}: {err.message}") from None
