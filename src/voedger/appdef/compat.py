"""Backward compatibility of schemas: may an application move from one AppDef to the next?

Both definitions become trees (``AppDef`` -> ``Types`` -> one node per type -> its ``Fields``,
``Containers``, ...), compared node by node; each node name has a constraint on how its children
may change. The rules are Voedger's ``appdefcompat``, which protect readers of existing data:

===================================  ==============================================================
node                                 allowed changes
===================================  ==============================================================
``Types``                            insert anywhere; never remove (NodeRemoved)
``Fields``                           append at the end; never insert, remove, reorder or retype
``UniqueFields``                     reorder only; anything else is NodeModified
``PartKeyFields``, ``ClustColsFields`` nothing (NodeModified)
``CommandArgs``, ``CommandResult``   nothing: the QName stays (ValueChanged)
``Packages``                         add and reorder; never remove
anything else                        any change of children; a changed value is ValueChanged
===================================  ==============================================================

A field's value is its data kind only, so NOT NULL, lengths and patterns may change freely (NOT
NULL is enforced on insert only). The ACL is not compared: projectors run as System.

Trees serialise to JSON (:func:`tree_to_json`), which is what ``vpm baseline`` stores, so a
baseline needs no old sources and no old compiler to be checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from typing import Any

from voedger.appdef.app import AppDef
from voedger.appdef.base import Type
from voedger.appdef.extensions import Command, Query
from voedger.appdef.fields import Field
from voedger.appdef.qname import QName
from voedger.appdef.structures import Structure
from voedger.appdef.views import View
from voedger.appdef.workspaces import Workspace

__all__ = [
    "CompatError",
    "ErrorType",
    "Node",
    "build_tree",
    "check_compat",
    "ignore_errors",
    "tree_from_json",
    "tree_to_json",
]

Value = str | bool | int | None


class ErrorType(StrEnum):
    NodeRemoved = "NodeRemoved"
    OrderChanged = "OrderChanged"
    NodeInserted = "NodeInserted"
    ValueChanged = "ValueChanged"
    NodeModified = "NodeModified"


class _Rule(IntFlag):
    NON_MODIFIABLE = 0
    APPEND_ONLY = 1
    INSERT_ONLY = 2
    ORDER_CHANGE_ONLY = 4
    ALL_ALLOWED = 255


_RULES: dict[str, _Rule] = {
    "Types": _Rule.INSERT_ONLY,
    "Fields": _Rule.APPEND_ONLY,
    "UniqueFields": _Rule.ORDER_CHANGE_ONLY,
    "PartKeyFields": _Rule.NON_MODIFIABLE,
    "ClustColsFields": _Rule.NON_MODIFIABLE,
    "CommandArgs": _Rule.NON_MODIFIABLE,
    "CommandResult": _Rule.NON_MODIFIABLE,
    "Packages": _Rule.INSERT_ONLY,
}


@dataclass(frozen=True, slots=True)
class Node:
    """A node of a compatibility tree: a name (unique among its siblings), a value, children."""

    name: str
    value: Value = None
    props: tuple[Node, ...] = ()

    def child(self, name: str) -> Node | None:
        return next((p for p in self.props if p.name == name), None)


@dataclass(frozen=True, slots=True)
class CompatError:
    """One break: where (the path in the *old* tree) and what kind."""

    path: tuple[str, ...]
    error: ErrorType

    def __str__(self) -> str:
        return f"{'/'.join(self.path)}: {self.error}"


# --------------------------------------------------------------------------- building trees


def _fields(name: str, fields: Iterable[Field]) -> Node:
    return Node(name, None, tuple(Node(f.name, f.kind.value) for f in fields))


def _structure(s: Structure, *, doc: bool) -> Node:
    props: list[Node] = []
    if doc:
        uniques = []
        for u in s.uniques:
            fields = [f for n in u.fields if (f := s.field(n)) is not None]
            uniques.append(Node(str(u.name), None, (_fields("UniqueFields", fields),)))
        props.append(Node("Uniques", None, tuple(uniques)))
    props.append(_fields("Fields", s.fields))
    props.append(Node("Containers", None, tuple(Node(c.name, str(c.type)) for c in s.containers)))
    props.append(Node("Abstract", s.abstract))
    return Node(str(s.qname), None if doc else str(s.qname), tuple(props))


def _param_fields(app: AppDef, name: str, param: QName | None) -> Node:
    t = app.find(param) if param is not None else None
    return _fields(name, t.fields if isinstance(t, Structure) else ())


def _type(app: AppDef, t: Type) -> Node:
    q = str(t.qname)
    if isinstance(t, Workspace):
        types = tuple(Node(str(x.qname), str(x.qname)) for x in t.types())
        return Node(
            q,
            None,
            (
                Node("Types", None, types),
                Node("Descriptor", str(t.descriptor) if t.descriptor else ""),
                Node("Abstract", t.abstract),
            ),
        )
    if isinstance(t, View):
        return Node(
            q,
            None,
            (
                _fields("PartKeyFields", t.partition_key),
                _fields("ClustColsFields", t.clustering_columns),
                _fields("Fields", t.value),
            ),
        )
    if isinstance(t, Query):
        args = _param_fields(app, "QueryArgs", t.param)
        return Node(q, None, (args, _param_fields(app, "QueryResult", t.result)))
    if isinstance(t, Command):

        def qn(x: QName | None) -> str | None:
            return None if x is None else str(x)

        return Node(
            q,
            None,
            (
                Node("CommandArgs", qn(t.param)),
                Node("UnloggedArgs", qn(t.unlogged_param)),
                Node("CommandResult", qn(t.result)),
            ),
        )
    if isinstance(t, Structure):
        return _structure(t, doc=t.kind.is_doc)
    return Node(q, q)


def build_tree(app: AppDef) -> Node:
    """The compatibility tree of an application."""
    types = Node("Types", None, tuple(_type(app, t) for t in app.types()))
    packages = Node("Packages", None, tuple(Node(p.path, p.name) for p in app.packages))
    return Node("AppDef", None, (types, packages))


def renamed_tree(node: Node, rename: Callable[[str], str]) -> Node:
    """The tree with every text in it (names and values) passed through ``rename``: an old
    schema's tree under the names its QNames have now (``c.sys.RenameQName``), so that a rename
    is no break."""
    value = rename(node.value) if isinstance(node.value, str) else node.value
    return Node(rename(node.name), value, tuple(renamed_tree(p, rename) for p in node.props))


# --------------------------------------------------------------------------- comparing trees


def check_compat(old: Node | AppDef, new: Node | AppDef) -> list[CompatError]:
    """Every way ``new`` breaks readers of data written under ``old``; empty when compatible."""
    old_tree = old if isinstance(old, Node) else build_tree(old)
    new_tree = new if isinstance(new, Node) else build_tree(new)
    errors: list[CompatError] = []
    _compare(old_tree, new_tree, (old_tree.name,), errors)
    return errors


def _compare(old: Node, new: Node, path: tuple[str, ...], errors: list[CompatError]) -> None:
    if old.value != new.value:
        errors.append(CompatError(path, ErrorType.ValueChanged))
    rule = _RULES.get(old.name, _Rule.ALL_ALLOWED)
    new_index = {n.name: i for i, n in enumerate(new.props)}
    old_names = {n.name for n in old.props}
    deleted = [n.name for n in old.props if n.name not in new_index]
    reordered = [n.name for i, n in enumerate(old.props) if n.name in new_index and new_index[n.name] != i]
    added = [i for i, n in enumerate(new.props) if n.name not in old_names]
    appended = sum(1 for i in added if i >= len(old.props))
    inserted = len(added) - appended

    if rule != _Rule.ALL_ALLOWED:
        modified = ErrorType.NodeModified
        if rule == _Rule.NON_MODIFIABLE:
            if added or deleted or reordered:
                errors.append(CompatError(path, modified))
        elif rule & _Rule.ORDER_CHANGE_ONLY:
            if added or deleted:
                errors.append(CompatError(path, modified))
        else:
            if rule & _Rule.APPEND_ONLY and inserted and not deleted:
                errors.append(CompatError(path, ErrorType.NodeInserted))
            errors.extend(CompatError((*path, name), ErrorType.NodeRemoved) for name in deleted)
            if rule & _Rule.APPEND_ONLY and reordered and not deleted:
                errors.extend(CompatError((*path, name), ErrorType.OrderChanged) for name in reordered)

    for o in old.props:
        if o.name in new_index:
            _compare(o, new.props[new_index[o.name]], (*path, o.name), errors)


def ignore_errors(errors: Iterable[CompatError], paths: Iterable[str | Sequence[str]]) -> list[CompatError]:
    """Drop the errors at the given paths (``AppDef/Types/pkg.T/Fields/F`` or its parts): breaks
    the team has accepted knowingly. A path may carry the kind of break as ``vpm compat`` prints
    it (``AppDef/Types/pkg.T: NodeRemoved``): then only that kind is dropped there."""
    kinds = {str(t) for t in ErrorType}
    skip: set[str] = set()
    skip_kind: set[tuple[str, str]] = set()
    for p in paths:
        text = (p if isinstance(p, str) else "/".join(p)).strip()
        head, sep, kind = text.rpartition(":")
        if sep and kind.strip() in kinds:
            skip_kind.add((head.strip(), kind.strip()))
        else:
            skip.add(text)
    return [e for e in errors if "/".join(e.path) not in skip and ("/".join(e.path), str(e.error)) not in skip_kind]


# --------------------------------------------------------------------------- JSON


def tree_to_json(node: Node) -> dict[str, Any]:
    """A JSON-ready dict; empty values and children are left out to keep baselines short."""
    out: dict[str, Any] = {"name": node.name}
    if node.value is not None:
        out["value"] = node.value
    if node.props:
        out["props"] = [tree_to_json(p) for p in node.props]
    return out


def tree_from_json(data: Any) -> Node:
    """The inverse of :func:`tree_to_json`; raises ValueError on malformed input."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError(f"not a compatibility tree node: {data!r:.80}")
    value = data.get("value")
    if value is not None and not isinstance(value, str | bool | int):
        raise ValueError(f"node {data['name']}: bad value {value!r:.80}")
    props = data.get("props", [])
    if not isinstance(props, list):
        raise ValueError(f"node {data['name']}: props must be a list")
    return Node(data["name"], value, tuple(tree_from_json(p) for p in props))
