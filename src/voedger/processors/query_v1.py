"""API v1 query parameters and the rows processor that turns result objects into ``sections``.

A v1 request names what to answer per result object: ``elements`` (the object itself at path
"" and nested containers at ``a/b``, each with ``fields`` and ``refs`` to enrich from referenced
records), then ``filters``, ``orderBy``, ``startFrom`` and ``count`` over the root element. Each
answered object becomes one list with, per element, the list of its rows' values, as Voedger's
rows processor sends it. Mistakes in the request are 400s that name the part and the problem.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from voedger.appdef import SYS_QNAME, AppDef, DataKind, Field, Structure, Type
from voedger.processors.rows import Row, fields_of, type_of, value_of
from voedger.processors.tally import QueryStages
from voedger.structs.records import Record
from voedger.syserror import SysError

BODY_KEYS = frozenset({"args", "elements", "filters", "orderBy", "count", "startFrom"})
_ELEMENT_KEYS = frozenset({"path", "fields", "refs"})
_CMP = ("eq", "notEq", "gt", "lt")
_LOGIC = ("and", "or")
_INTS = frozenset({DataKind.int8, DataKind.int16, DataKind.int32, DataKind.int64, DataKind.RecordID})
_FLOATS = frozenset({DataKind.float32, DataKind.float64})
_STRINGS = frozenset({DataKind.string, DataKind.QName})
_MIN_NORMAL = sys.float_info.min

RecordReader = Callable[[int], Awaitable[Record | None]]


def bad(message: str) -> SysError:
    return SysError(400, message)


@dataclass(frozen=True)
class RefField:
    field: str
    ref: str

    @property
    def key(self) -> str:
        return f"{self.field}/{self.ref}"


@dataclass
class Element:
    path: tuple[str, ...]
    fields: list[str] = field(default_factory=list)
    refs: list[RefField] = field(default_factory=list)
    type: Type | None = None

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def keys(self) -> list[str]:
        return self.fields + [r.key for r in self.refs]


@dataclass
class Compare:
    kind: str
    field: str
    value: Any
    epsilon: float = 0.0


@dataclass
class Logic:
    kind: str
    operands: list[Compare | Logic]


Filter = Compare | Logic


@dataclass
class OrderBy:
    field: str
    desc: bool


@dataclass
class Params:
    elements: list[Element] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    order_by: list[OrderBy] = field(default_factory=list)
    count: int = 0
    start_from: int = 0

    @property
    def root(self) -> Element | None:
        return next((e for e in self.elements if not e.path), None)


# --- parsing ---------------------------------------------------------------------------------


def _objects(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(f'{where}: field "{key}" must be an array of objects')
    if not all(isinstance(v, dict) for v in value):
        raise bad(f"{where}: each member must be an object")
    return value


def _strict(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise bad(f"{where}: unexpected key(s) {', '.join(unknown)}")


def _integer(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if not _whole(value):
        raise bad(f'field "{key}" must be a whole number')
    return int(value)


def _whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _element(raw: Mapping[str, Any]) -> Element:
    where = "elements: element"
    _strict(raw, _ELEMENT_KEYS, where)
    path = raw.get("path", "")
    if not isinstance(path, str):
        raise bad(f'{where}: field "path" must be a string')
    fields = raw.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise bad(f'{where}: field "fields" must be an array of strings')
    refs_raw = raw.get("refs", [])
    if not isinstance(refs_raw, list):
        raise bad(f'{where}: field "refs" must be an array of [field, refField] pairs')
    refs = []
    for ref in refs_raw:
        if not isinstance(ref, list) or len(ref) != 2:
            got = len(ref) if isinstance(ref, list) else 1
            raise bad(f"{where}: field 'ref' parameters length must be 2 but got {got}")
        if not all(isinstance(p, str) for p in ref):
            raise bad(f"{where}: field 'ref' parameter must a string")
        refs.append(RefField(ref[0], ref[1]))
    e = Element(tuple(path.split("/")) if path else (), list(fields), refs)
    dupes = sorted({k for k in e.keys if e.keys.count(k) > 1})
    if dupes:
        raise bad(f"{where}: '{dupes[0]}' is requested twice")
    return e


def _filter(raw: Mapping[str, Any]) -> Filter:
    if "args" not in raw:
        raise bad("filters: filter: field 'args' must be present")
    kind = raw.get("expr")
    if not isinstance(kind, str):
        raise bad('filters: filter: field "expr" must be a string')
    _strict(raw, frozenset({"expr", "args"}), f"filters: '{kind}' filter")
    args = raw["args"]
    if kind in _CMP:
        if not isinstance(args, dict):
            raise bad(f"filters: '{kind}' filter: field 'args' must be an object")
        _strict(args, frozenset({"field", "value", "options"}), f"filters: '{kind}' filter: args")
        name = args.get("field")
        if not isinstance(name, str):
            raise bad(f"filters: '{kind}' filter: field \"field\" must be a string")
        if "value" not in args:
            raise bad(f"filters: '{kind}' filter: field 'value' must be present")
        options = args.get("options", {})
        if not isinstance(options, dict):
            raise bad(f"filters: '{kind}' filter: field \"options\" must be an object")
        epsilon = options.get("epsilon", 0.0)
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
            raise bad(f"filters: '{kind}' filter: field \"epsilon\" must be a number")
        return Compare(kind, name, args["value"], float(epsilon))
    if kind in _LOGIC:
        if not isinstance(args, list):
            raise bad(f"filters: '{kind}' filter: field 'args' must be an array of objects")
        if not all(isinstance(a, dict) for a in args):
            raise bad(f"filters: '{kind}' filter: each 'args' member must be an object")
        return Logic(kind, [_filter(a) for a in args])
    raise bad(f"filters: filter: expr: filter '{kind}' is unknown")


def _order_by(raw: Mapping[str, Any]) -> OrderBy:
    _strict(raw, frozenset({"field", "desc"}), "orderBy")
    name = raw.get("field")
    if not isinstance(name, str):
        raise bad('orderBy: field "field" must be a string')
    desc = raw.get("desc", False)
    if not isinstance(desc, bool):
        raise bad('orderBy: field "desc" must be a boolean')
    return OrderBy(name, desc)


def parse_params(app: AppDef, body: Mapping[str, Any], result: Type | None) -> Params:
    """Read and check elements, filters, orderBy, count and startFrom against the result type
    (``result`` of kind Any: the fields are not known and not checked)."""
    p = Params(
        elements=[_element(e) for e in _objects(body, "elements", "elements")],
        filters=[_filter(f) for f in _objects(body, "filters", "filters")],
        order_by=[_order_by(o) for o in _objects(body, "orderBy", "orderBy")],
        count=_integer(body, "count"),
        start_from=_integer(body, "startFrom"),
    )
    _validate(app, p, result)
    return p


def _validate(app: AppDef, p: Params, result: Type | None) -> None:
    known = result is None or isinstance(result, Structure)
    seen: set[str] = set()
    for e in p.elements:
        if e.name in seen:
            raise bad(f"elements: path '{e.name}' must be unique")
        seen.add(e.name)
    for e in p.elements:
        e.type = result if known else None
        for name in e.path:
            cont = e.type.container(name) if isinstance(e.type, Structure) else None
            if known and cont is None:
                raise bad(f"elements: unknown nested table {name}")
            e.type = app.find(cont.type) if cont is not None else None
        if not known:
            continue
        declared = fields_of(e.type)
        for name in e.fields:
            if name in declared:
                continue
            if not e.path:
                raise bad(
                    f"elements: root element fields has field '{name}' that is unexpected in root fields, "
                    "please remove it"
                )
            owner = e.type.qname if e.type is not None else ""
            raise bad(
                f"elements: nested element fields has field '{name}' that is unexpected among fields of "
                f"{owner}, please remove it"
            )
        for ref in e.refs:
            if ref.field not in declared or declared[ref.field].kind not in _INTS:
                raise bad(f"elements: refs: '{ref.field}' is not a reference field")
    root = set(p.root.keys) if p.root is not None else set()
    _check_filters(p.filters, "filters: ", root)
    for o in p.order_by:
        if o.field not in root:
            absent = "that is absent in root element fields/refs, please add or change it"
            raise bad(f"orderBy has field '{o.field}' {absent}")


def _check_filters(filters: list[Filter], prefix: str, root: set[str]) -> None:
    """Every filter (at any depth of and/or) names a field of the root element. A module
    function: a recursive closure would be a reference cycle on every query."""
    for f in filters:
        if isinstance(f, Logic):
            _check_filters(f.operands, f"{prefix}'{f.kind}' filter: ", root)
        elif f.field not in root:
            raise bad(
                f"{prefix}'{f.kind}' filter has field '{f.field}' that is absent in root element "
                "fields/refs, please add or change it"
            )


# --- the rows processor ----------------------------------------------------------------------


@dataclass
class _Out:
    values: list[list[list[Any]]]
    root: dict[str, Any]
    kinds: dict[str, DataKind | None]


def _kind_of(value: Any) -> DataKind | None:
    if isinstance(value, bool):
        return DataKind.bool
    if isinstance(value, int):
        return DataKind.int64
    if isinstance(value, float):
        return DataKind.float64
    if isinstance(value, str):
        return DataKind.string
    return None


def _children(obj: Row, path: tuple[str, ...]) -> list[Row]:
    level = [obj]
    for name in path:
        level = [c for o in level for c in o.get(name, ()) if isinstance(c, dict)]
    return level


class RowsProcessor:
    """Fields, enrichment, filter, order and counter, over every object a query returned."""

    def __init__(self, app: AppDef, params: Params, read: RecordReader, stages: QueryStages | None = None) -> None:
        self.app = app
        self.params = params
        self.read = read
        self.stages = stages if stages is not None else QueryStages()
        """Where the seconds of each stage are added (the application's, for its metrics)."""
        self._enriching = 0.0

    async def sections(self, objects: list[Row]) -> dict[str, Any]:
        p = self.params
        st = self.stages
        t0 = time.perf_counter()
        if not p.filters and not p.order_by and p.count > 0:
            # Without filters and ordering, the page is known before any row is built.
            start = max(p.start_from, 0)
            objects = objects[start : start + p.count]
            t1 = time.perf_counter()
            out = [await self._row(obj) for obj in objects]
            t2 = time.perf_counter()
            answer = {"sections": [{"type": "", "elements": [o.values for o in out]}]} if out else {}
            self._account(count=t1 - t0, rows=t2 - t1, send=time.perf_counter() - t2)
            return answer
        built = [await self._row(obj) for obj in objects]
        t1 = time.perf_counter()
        out = [o for o in built if self._match(o)]
        t2 = time.perf_counter()
        for order in reversed(self.params.order_by):
            out.sort(key=partial(_out_key, order.field), reverse=order.desc)
        t3 = time.perf_counter()
        start = max(self.params.start_from, 0)
        out = out[start:]
        if self.params.count:
            out = out[: max(self.params.count, 0)]
        t4 = time.perf_counter()
        answer = {"sections": [{"type": "", "elements": [o.values for o in out]}]} if out else {}
        st.filter += t2 - t1
        st.order += t3 - t2
        self._account(count=t4 - t3, rows=t1 - t0, send=time.perf_counter() - t4)
        return answer

    def _account(self, count: float, rows: float, send: float) -> None:
        """Rows' time is fields and enrichment: enrichment is timed on its own."""
        st = self.stages
        st.count += count
        st.enrich += self._enriching
        st.fields += max(rows - self._enriching, 0.0)
        st.send += send
        self._enriching = 0.0

    async def _row(self, obj: Row) -> _Out:
        values: list[list[list[Any]]] = []
        root: dict[str, Any] = {}
        kinds: dict[str, DataKind | None] = {}
        for e in self.params.elements:
            rows: list[list[Any]] = []
            for child in _children(obj, e.path):
                cells, child_kinds = await self._cells(e, child)
                if not e.path and not rows:
                    root = cells
                    kinds = child_kinds
                rows.append(list(cells.values()))
            values.append(rows)
        return _Out(values, root, kinds)

    async def _cells(self, e: Element, obj: Row) -> tuple[dict[str, Any], dict[str, DataKind | None]]:
        declared = fields_of(e.type)
        cells: dict[str, Any] = {}
        kinds: dict[str, DataKind | None] = {}
        for name in e.fields:
            f = declared.get(name)
            cells[name] = value_of(f, obj) if f is not None else obj.get(name)
            kinds[name] = f.kind if f is not None else _kind_of(cells[name])
        for ref in e.refs:
            cells[ref.key], kinds[ref.key] = await self._enrich(ref, obj.get(ref.field))
        return cells, kinds

    async def _enrich(self, ref: RefField, record_id: Any) -> tuple[Any, DataKind | None]:
        if isinstance(record_id, bool) or not isinstance(record_id, int):
            return None, None
        began = time.perf_counter()
        try:
            return await self._enriched(ref, record_id)
        finally:
            self._enriching += time.perf_counter() - began

    async def _enriched(self, ref: RefField, record_id: int) -> tuple[Any, DataKind | None]:
        rec = await self.read(record_id)
        if rec is None:
            return None, None  # a null or dangling reference enriches to null
        target = type_of(self.app, rec)
        f: Field | None = fields_of(target).get(ref.ref)
        if f is None:
            raise _no_ref_field(ref, rec[SYS_QNAME])
        return value_of(f, rec), f.kind

    def _match(self, o: _Out) -> bool:
        return all(_matches(f, o) for f in self.params.filters)


def _no_ref_field(ref: RefField, table: str) -> SysError:
    return bad(f"ref field {ref.field} references to table {table} that does not contain field {ref.ref}")


def _matches(f: Filter, o: _Out) -> bool:
    if isinstance(f, Logic):
        results = (_matches(x, o) for x in f.operands)
        return all(results) if f.kind == "and" else any(results)
    kind = o.kinds.get(f.field)
    actual = o.root.get(f.field)
    if kind is None or actual is None:
        return False
    expected = _filter_value(f, kind)
    if kind in _FLOATS and f.kind in ("eq", "notEq"):
        equal = _nearly_equal(float(actual), float(expected), f.epsilon)
        return equal if f.kind == "eq" else not equal
    if f.kind == "eq":
        return bool(actual == expected)
    if f.kind == "notEq":
        return bool(actual != expected)
    if kind is DataKind.bool:
        raise bad(f"'{f.kind}' filter: field {f.field}: wrong type")
    return bool(actual > expected) if f.kind == "gt" else bool(actual < expected)


def _filter_value(f: Compare, kind: DataKind) -> Any:
    v = f.value
    if kind in _INTS and _whole(v):
        return int(v)
    if kind in _FLOATS and isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if kind in _STRINGS and isinstance(v, str):
        return v
    if kind is DataKind.bool and isinstance(v, bool):
        return v
    raise bad(f"'{f.kind}' filter: field {f.field}: value {v!r} does not fit its kind {kind}")


def _nearly_equal(a: float, b: float, epsilon: float) -> bool:
    """Voedger's float comparison: relative, with a floor near zero."""
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / (abs(a) + abs(b)) < epsilon


def _out_key(name: str, o: _Out) -> tuple[int, Any]:
    return _sort_key(o.root.get(name), name)


def _sort_key(value: Any, name: str) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        raise bad(f"order by '{name}' is impossible: wrong type")
    if isinstance(value, int | float):
        return (1, value) if not (isinstance(value, float) and math.isnan(value)) else (0, 0)
    if isinstance(value, str):
        return (2, value)
    raise bad(f"order by '{name}' is impossible: wrong type")


def raw_sections(objects: list[Row]) -> dict[str, Any]:
    """A ``sys.Raw`` result: each object's Body as the only value of its only row."""
    if not objects:
        return {}
    return {"sections": [{"type": "", "elements": [[[[o.get("Body", "")]]] for o in objects]}]}
