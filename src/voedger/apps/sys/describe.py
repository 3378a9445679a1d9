"""``q.sys.DescribePackageNames`` and ``q.sys.DescribePackage``: the application's schema, package
by package, as Voedger describes it for tools and generated clients.

``DescribePackageNames`` answers the local names of the application's packages (``sys`` left
out), comma-separated. ``DescribePackage(PackageName)`` answers the JSON of one package: its
``Path`` and its ``Workspaces``, each with the types declared in it: ``Descriptor``, ``Tags``,
``Structures`` (fields, containers, uniques, singletons), ``Views`` (partition key, clustering
columns, value), ``Extensions`` (commands, queries, projectors with their events, jobs) and
``Roles``. Keys are sorted and empty parts left out, as Go writes Voedger's description. Not
described (yet): named data types, the ACL, rates and limits of a workspace.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from voedger.appdef import (
    AppDef,
    Command,
    DataKind,
    Field,
    Filter,
    Job,
    Projector,
    Query,
    Role,
    Structure,
    Type,
    TypeKind,
    View,
    Workspace,
)
from voedger.appdef.extensions import Extension, Function
from voedger.apps.sys.builtins import platform
from voedger.state import Intents, State

__all__ = ["describe_package", "package_names"]

_DATA_NAMES: Final = {
    DataKind.int8: "sys.int8",
    DataKind.int16: "sys.int16",
    DataKind.int32: "sys.int32",
    DataKind.int64: "sys.int64",
    DataKind.float32: "sys.float32",
    DataKind.float64: "sys.float64",
    DataKind.bytes: "sys.bytes",
    DataKind.string: "sys.string",
    DataKind.QName: "sys.QName",
    DataKind.bool: "sys.bool",
    DataKind.RecordID: "sys.RecordID",
    DataKind.Record: "sys.Record",
    DataKind.Event: "sys.Event",
}


def package_names(app: AppDef) -> list[str]:
    return sorted(p.name for p in app.packages if p.name != "sys")


def _type(t: Type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.comment:
        out["Comment"] = t.comment
    if t.tags:
        out["Tags"] = sorted(str(tag) for tag in t.tags)
    return out


def _field(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": f.name}
    if f.comment:
        out["Comment"] = f.comment
    constraints: dict[str, Any] = {}
    if f.max_len is not None:
        constraints["MaxLen"] = f.max_len
    if f.pattern:
        constraints["Pattern"] = f.pattern
    if constraints:
        out["DataType"] = {"Ancestor": _DATA_NAMES[f.kind], "Constraints": constraints}
    else:
        out["Data"] = _DATA_NAMES.get(f.kind, str(f.kind))
    if f.required:
        out["Required"] = True
    if f.verifiable:
        out["Verifiable"] = True
    if f.refs:
        out["Refs"] = [str(r) for r in f.refs]
    return out


def _structure(t: Structure) -> dict[str, Any]:
    out = _type(t)
    out["Kind"] = str(t.kind)
    if t.fields:
        out["Fields"] = [_field(f) for f in t.fields]
    if t.containers:
        out["Containers"] = [
            {
                **({"Comment": c.comment} if c.comment else {}),
                "Name": c.name,
                "Type": str(c.type),
                "MinOccurs": c.min_occurs,
                "MaxOccurs": c.max_occurs,
            }
            for c in t.containers
        ]
    if t.uniques:
        out["Uniques"] = {
            str(u.name): {**({"Comment": u.comment} if u.comment else {}), "Fields": list(u.fields)} for u in t.uniques
        }
    if t.unique_field:
        out["UniqueField"] = t.unique_field
    if t.singleton:
        out["Singleton"] = True
    return out


def _view(v: View) -> dict[str, Any]:
    out = _type(v)
    out["Key"] = {
        "Partition": [_field(f) for f in v.partition_key],
        "ClustCols": [_field(f) for f in v.clustering_columns],
    }
    if v.value:
        out["Value"] = [_field(f) for f in v.value]
    return out


def _filter(f: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if f.qnames:
        out["QNames"] = [str(q) for q in f.qnames]
    if f.kinds:
        out["Types"] = sorted(f"TypeKind_{k}" for k in f.kinds)
        if f.workspace is not None:
            out["Workspace"] = str(f.workspace)
    if f.tags:
        out["Tags"] = [str(t) for t in f.tags]
    return out


def _extension(e: Extension) -> dict[str, Any]:
    out = _type(e)
    out["Name"] = e.name
    out["Engine"] = str(e.engine)
    for key, refs in (("States", e.states), ("Intents", e.intents)):
        if refs:
            out[key] = {str(r.storage): sorted(str(n) for n in r.entities) for r in refs}
    if isinstance(e, Function):
        if e.param is not None:
            out["Arg"] = str(e.param)
        if e.result is not None:
            out["Result"] = str(e.result)
    if isinstance(e, Command) and e.unlogged_param is not None:
        out["UnloggedArg"] = str(e.unlogged_param)
    if isinstance(e, Projector):
        out["Events"] = [
            {
                "Ops": sorted(str(op) for op in ev.ops),
                "Filter": _filter(ev.filter),
                **({"Comment": ev.comment} if ev.comment else {}),
            }
            for ev in e.events
        ] or None
        if e.want_errors:
            out["WantErrors"] = True
    if isinstance(e, Job):
        out["CronSchedule"] = e.cron
    return out


def _workspace(app: AppDef, ws: Workspace) -> dict[str, Any]:
    out = _type(ws)
    if ws.descriptor is not None:
        out["Descriptor"] = str(ws.descriptor)
    parts: dict[str, dict[str, Any]] = {}
    for name in ws.local_types:
        t = app.find(name)
        if t is None:
            continue
        key = str(t.qname)
        if t.kind is TypeKind.Tag:
            parts.setdefault("Tags", {})[key] = _type(t)
        elif isinstance(t, Structure):
            parts.setdefault("Structures", {})[key] = _structure(t)
        elif isinstance(t, View):
            parts.setdefault("Views", {})[key] = _view(t)
        elif isinstance(t, Extension):
            group = {Command: "Commands", Query: "Queries", Projector: "Projectors", Job: "Jobs"}.get(type(t))
            if group is not None:
                parts.setdefault("Extensions", {}).setdefault(group, {})[key] = _extension(t)
        elif isinstance(t, Role):
            parts.setdefault("Roles", {})[key] = {**_type(t), **({"Published": True} if t.published else {})}
    out.update(parts)
    return out


def describe_package(app: AppDef, name: str) -> dict[str, Any] | None:
    """The description of the package ``name`` (its local name); None if there is none."""
    pkg = app.package(name)
    if pkg is None or name == "sys":
        return None
    out: dict[str, Any] = {}
    if pkg.path:
        out["Path"] = pkg.path
    workspaces = {
        str(ws.qname): _workspace(app, ws)
        for ws in app.workspaces()
        if ws.qname.pkg == name and ws.qname != app.sys_workspace.qname
    }
    if workspaces:
        out["Workspaces"] = workspaces
    return out


@platform.query("sys.DescribePackageNames")
async def describe_package_names_query(state: State, intents: Intents) -> None:
    intents.result(Names=",".join(package_names(state.app)))


@platform.query("sys.DescribePackage")
async def describe_package_query(state: State, intents: Intents) -> None:
    desc = describe_package(state.app, str(state.arg.get("PackageName", "")))
    intents.result(PackageDesc=orjson.dumps(desc, option=orjson.OPT_SORT_KEYS).decode())
