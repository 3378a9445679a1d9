"""API v2 read parameters and the operators over result rows: where, order, skip and limit,
include and keys.

The parameters come from the URL: ``where`` and ``args`` are JSON, ``order`` lists fields
(``-field`` for descending), ``include`` lists dotted paths of references and containers to
expand, ``keys`` lists dotted paths to keep (a quoted segment may hold dots: ``"sys.ID"``). A
where condition is a value (equality) or an object of operators: ``$eq``, ``$ne``, ``$gt``,
``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``. Voedger answers only equality and ``$in``; the
others are ours, with the same shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from voedger.appdef import SYS_ID, AppDef, DataKind, Field, Structure, Type, TypeKind, View
from voedger.processors.rows import Row, fields_of, record_map, type_of
from voedger.structs.records import Record
from voedger.structs.values import ValidationError, coerce
from voedger.syserror import SysError

OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"})
MAX_KEY_READS = 10_000
RecordReader = Callable[[int], Awaitable[Record | None]]
Relations = Mapping[int, Mapping[str, list[Record]]]
ChildrenReader = Callable[[int], Awaitable[Mapping[str, list[Record]]]]
"""The records in the containers of one WDoc or WRecord, by container."""
WKINDS = frozenset({TypeKind.WDoc, TypeKind.WRecord})


def bad(message: str) -> SysError:
    return SysError(400, message)


@dataclass
class Condition:
    field: str
    op: str
    value: Any


@dataclass
class Params:
    where: dict[str, Any] = field(default_factory=dict)
    order: list[tuple[str, bool]] = field(default_factory=list)
    limit: int = 0
    skip: int = 0
    include: list[list[str]] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    args: dict[str, Any] | None = None
    raw_arg: str | None = None

    @property
    def constrained(self) -> bool:
        return bool(self.where or self.order or self.limit or self.skip or self.include or self.keys)


def _number(params: Mapping[str, str], name: str) -> int:
    text = params.get(name, "")
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise bad(f"invalid '{name}' parameter") from None
    if value < 0:
        raise bad(f"invalid '{name}' parameter")
    return value


def _json_object(params: Mapping[str, str], name: str) -> dict[str, Any] | None:
    text = params.get(name, "")
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad(f"invalid '{name}' parameter") from None
    if not isinstance(value, dict):
        raise bad(f"invalid '{name}' parameter")
    return value


def split_path(path: str) -> list[str]:
    """Dotted path segments; double quotes keep dots inside a segment (``"sys.ID"``)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in path:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _paths(params: Mapping[str, str], name: str, quoted: bool) -> list[list[str]]:
    text = params.get(name, "")
    if not text:
        return []
    paths = [split_path(p) if quoted else p.split(".") for p in text.split(",")]
    if any(not seg for p in paths for seg in p):
        raise bad(f"invalid '{name}' parameter")
    return paths


def parse_params(params: Mapping[str, str], raw_arg: bool = False) -> Params:
    """Read the URL parameters of a v2 read; other parameters are ignored, as in Voedger."""
    order = []
    for item in params.get("order", "").split(",") if params.get("order") else []:
        name = item.lstrip("-")
        if not name:
            raise bad("invalid 'order' parameter")
        order.append((name, item.startswith("-")))
    p = Params(
        where=_json_object(params, "where") or {},
        order=order,
        limit=_number(params, "limit"),
        skip=_number(params, "skip"),
        include=_paths(params, "include", quoted=False),
        keys=_paths(params, "keys", quoted=True),
    )
    if raw_arg:
        p.raw_arg = params.get("args", "")
    else:
        p.args = _json_object(params, "args")
    return p


# --- where -----------------------------------------------------------------------------------


def parse_where(where: Mapping[str, Any], owner: Type | None) -> list[Condition]:
    """Conditions of a where object; with a known ``owner`` type its fields are checked and the
    values converted to their kinds."""
    declared = fields_of(owner) if owner is not None else None
    out = []
    for name, spec in where.items():
        f = declared.get(name) if declared is not None else None
        if declared is not None and f is None:
            raise bad(f"unexpected field: '{name}'")
        if isinstance(spec, dict):
            if not spec:
                raise bad(f"unsupported constraint: field '{name}' has an empty condition")
            for op, value in spec.items():
                if op not in OPERATORS:
                    raise bad(f"unsupported constraint: '{op}' on field '{name}'")
                out.append(Condition(name, op, _operand(f, name, op, value)))
        elif isinstance(spec, list):
            raise bad(f"unsupported type: field '{name}' needs a value or an object of operators")
        else:
            out.append(Condition(name, "$eq", _operand(f, name, "$eq", spec)))
    return out


def _operand(f: Field | None, name: str, op: str, value: Any) -> Any:
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise bad(f"unexpected params: '{op}' of field '{name}' needs an array")
        return [_convert(f, name, v) for v in value]
    return _convert(f, name, value)


def _convert(f: Field | None, name: str, value: Any) -> Any:
    if isinstance(value, dict | list):
        raise bad(f"unsupported type: field '{name}' is compared with a JSON {type(value).__name__}")
    if f is None or value is None:
        return value
    try:
        return coerce(f"where field '{name}'", f, value)
    except ValidationError as exc:
        raise bad(str(exc)) from None


def matches(row: Mapping[str, Any], conditions: list[Condition]) -> bool:
    return all(_holds(row.get(c.field), c) for c in conditions)


def _holds(actual: Any, c: Condition) -> bool:
    if c.op == "$eq":
        return bool(actual == c.value)
    if c.op == "$ne":
        return bool(actual != c.value)
    if c.op == "$in":
        return actual in c.value
    if c.op == "$nin":
        return actual not in c.value
    try:
        if c.op == "$gt":
            return bool(actual > c.value)
        if c.op == "$gte":
            return bool(actual >= c.value)
        if c.op == "$lt":
            return bool(actual < c.value)
        return bool(actual <= c.value)
    except TypeError:
        return False  # null or a value of another type: not comparable, no match


def view_keys(view: View, conditions: list[Condition]) -> list[dict[str, Any]]:
    """The key prefixes to read: every partition key field and the leading clustering columns
    that the where object fixes by equality or ``$in``, in every combination."""
    choices: list[tuple[str, list[Any]]] = []
    for i, f in enumerate(view.key):
        values = _fixed(f.name, conditions)
        if values is None:
            if i < len(view.partition_key):
                raise bad("where constraint must specify the partition key")
            break
        choices.append((f.name, values))
    total = 1
    for _, values in choices:
        total *= len(values)
    if total > MAX_KEY_READS:
        raise bad(f"where constraint selects {total} keys, at most {MAX_KEY_READS} allowed")
    names = [n for n, _ in choices]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in choices))]


def _fixed(name: str, conditions: list[Condition]) -> list[Any] | None:
    for c in conditions:
        if c.field == name and c.op == "$eq":
            return [c.value]
        if c.field == name and c.op == "$in":
            return list(dict.fromkeys(c.value))
    return None


# --- order, skip and limit, keys -------------------------------------------------------------


def check_order(order: list[tuple[str, bool]], owner: Type | None) -> None:
    declared = fields_of(owner) if owner is not None else None
    for name, _ in order:
        if declared is not None and name not in declared:
            raise bad(f"order: unexpected field: '{name}'")


def order_rows(rows: list[Row], order: list[tuple[str, bool]]) -> None:
    """Sort in place by each field in turn, nulls first; a later field breaks earlier ties."""
    for name, desc in reversed(order):
        rows.sort(key=partial(_field_key, name), reverse=desc)


def _field_key(name: str, row: Row) -> tuple[int, Any]:
    return _sort_key(row.get(name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def page(rows: list[Row], skip: int, limit: int) -> list[Row]:
    rows = rows[skip:]
    return rows[:limit] if limit else rows


def project(obj: Row, keys: list[list[str]]) -> None:
    """Keep only the listed paths, in place; a path through a list keeps it in every item."""
    tree: dict[str, Any] = {}
    for path in keys:
        node = tree
        for seg in path[:-1]:
            nxt = node.setdefault(seg, {})
            if nxt is True:
                break
            node = nxt
        else:
            node[path[-1]] = True
    _project(obj, tree)


def _project(obj: Row, tree: Mapping[str, Any]) -> None:
    for key in list(obj):
        node = tree.get(key)
        if node is None:
            del obj[key]
        elif isinstance(node, dict):
            value = obj[key]
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _project(item, node)


# --- include -----------------------------------------------------------------------------------


class Includer:
    """Expands references (to the referenced record) and containers (to their records) along
    the include paths; each segment must be a reference field or a container of its type.

    A container's records come from ``relations`` (parent ID -> container -> records, given
    beforehand: a CDoc's from sys.CollectionView, an ODoc's from its event) or, for a WDoc or
    WRecord, from ``children``, asked once per parent."""

    def __init__(
        self,
        app: AppDef,
        paths: list[list[str]],
        read: RecordReader,
        relations: Relations,
        children: ChildrenReader | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.read = read
        self.relations = relations
        self.children = children
        self._found: dict[int, Mapping[str, list[Record]]] = {}

    async def _children(self, owner: Structure, parent_id: int) -> Mapping[str, list[Record]]:
        found = self.relations.get(parent_id)
        if found is not None or self.children is None or owner.kind not in WKINDS or parent_id <= 0:
            return found or {}
        hit = self._found.get(parent_id)
        if hit is None:
            hit = self._found[parent_id] = await self.children(parent_id)
        return hit

    async def apply(self, obj: Row, owner: Type | None) -> None:
        for path in self.paths:
            await self._fill(obj, owner, path, 0)

    async def _fill(self, parent: Row, owner: Type | None, path: list[str], i: int) -> None:
        if i == len(path):
            return
        seg = path[i]
        f = fields_of(owner).get(seg)
        cont = owner.container(seg) if isinstance(owner, Structure) else None
        is_ref = f is not None and f.kind is DataKind.RecordID and not f.is_sys
        if not is_ref and cont is None:
            raise bad(f"field expression - '{'.'.join(path)}', '{seg}' - unexpected field")
        if cont is not None:
            assert isinstance(owner, Structure)
            items = parent.get(seg)
            if items is None:
                children = (await self._children(owner, int(parent.get(SYS_ID, 0) or 0))).get(seg)
                if not children:
                    return
                items = parent[seg] = [record_map(c) for c in children]
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict):
                    await self._fill(item, self.app.find(cont.type), path, i + 1)
            return
        value = parent.get(seg)
        if isinstance(value, int) and not isinstance(value, bool):
            rec = await self.read(value)
            if rec is None:
                return  # a null or dangling reference stays as it is
            value = parent[seg] = record_map(rec)
        if isinstance(value, dict):
            await self._fill(value, type_of(self.app, value), path, i + 1)
