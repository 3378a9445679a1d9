"""Turning analysed VSQL into an :class:`~voedger.appdef.AppDef`.

The analyser has already checked the schema's rules; this module only translates. It still
reports, rather than crashes on, anything it cannot translate (a name that leads nowhere, a model
invariant that does not hold), as ``file:line:col: message`` diagnostics in one :class:`VSQLError`,
so that a half-checked schema never yields half an application.

What the translation decides, following Voedger's builder:

- a table's kind comes from the sys table its INHERITS chain ends in (``sys.CSingleton`` makes a
  singleton CDoc); inherited fields come first; nested tables take the record kind of their root
  and become containers of 0..100 occurrences;
- a TYPE field naming another TYPE is an object container (1..1 when NOT NULL, else 0..1);
- every non-abstract workspace has a descriptor, ``<Name>Descriptor`` unless named;
- unnamed UNIQUEs are named ``Table$uniques$01``, ``$02``, ...;
- ``GRANT ... ON ALL TABLES`` without a tag covers the types of the granting workspace only;
- ``sys.CRecord``/``sys.WRecord``/``sys.ODoc`` in a projector trigger mean all types of those kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from voedger.appdef.acl import ACLRule, Role
from voedger.appdef.app import AppDef, Package
from voedger.appdef.base import ANY, Tag, Type
from voedger.appdef.extensions import Command, Job, Projector, ProjectorEvent, Query
from voedger.appdef.fields import (
    DEFAULT_MAX_LEN,
    NESTED_MAX_OCCURS,
    Container,
    Field,
    Unique,
    system_fields,
)
from voedger.appdef.filters import Filter
from voedger.appdef.kinds import (
    RECORD_KINDS,
    RECORD_OPERATIONS,
    DataKind,
    ExtensionEngine,
    LimitOption,
    OperationKind,
    PolicyKind,
    RateScope,
    TypeKind,
    nested_kind,
)
from voedger.appdef.qname import SYS_PACKAGE, QName
from voedger.appdef.rates import Limit, Rate
from voedger.appdef.storages import Storage, StorageEntity, StorageOp, StorageRef, StorageScope
from voedger.appdef.structures import Structure
from voedger.appdef.views import View
from voedger.appdef.workspaces import SYS_WORKSPACE, Workspace
from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.schema import AppSchema

__all__ = ["Resolver", "build_appdef"]

Resolver = Callable[[ast.DefQName], "QName | tuple[str, str] | None"]
"""Maps a reference node to the name it denotes (the analyser's resolution), or None if unknown."""

_SYS_ROOTS: Final = {
    "CRecord": (TypeKind.CRecord, False),
    "WRecord": (TypeKind.WRecord, False),
    "ORecord": (TypeKind.ORecord, False),
    "CDoc": (TypeKind.CDoc, False),
    "WDoc": (TypeKind.WDoc, False),
    "ODoc": (TypeKind.ODoc, False),
    "CSingleton": (TypeKind.CDoc, True),
    "WSingleton": (TypeKind.WDoc, True),
}

_TRIGGER_KINDS: Final = {
    QName(SYS_PACKAGE, "CRecord"): frozenset({TypeKind.CDoc, TypeKind.CRecord}),
    QName(SYS_PACKAGE, "WRecord"): frozenset({TypeKind.WDoc, TypeKind.WRecord}),
    QName(SYS_PACKAGE, "ODoc"): frozenset({TypeKind.ODoc}),
}

_DATA_KINDS: Final = {
    ast.DataKind.VARCHAR: DataKind.string,
    ast.DataKind.BYTES: DataKind.bytes,
    ast.DataKind.INT8: DataKind.int8,
    ast.DataKind.INT16: DataKind.int16,
    ast.DataKind.INT32: DataKind.int32,
    ast.DataKind.INT64: DataKind.int64,
    ast.DataKind.FLOAT32: DataKind.float32,
    ast.DataKind.FLOAT64: DataKind.float64,
    ast.DataKind.TIMESTAMP: DataKind.int64,
    ast.DataKind.CURRENCY: DataKind.int64,
    ast.DataKind.BOOL: DataKind.bool,
    ast.DataKind.BLOB: DataKind.RecordID,
    ast.DataKind.QNAME: DataKind.QName,
}

_BLOB: Final = QName(SYS_PACKAGE, "BLOB")

_OPS: Final = {
    ast.Operation.SELECT: OperationKind.Select,
    ast.Operation.INSERT: OperationKind.Insert,
    ast.Operation.UPDATE: OperationKind.Update,
    ast.Operation.ACTIVATE: OperationKind.Activate,
    ast.Operation.DEACTIVATE: OperationKind.Deactivate,
    ast.Operation.EXECUTE: OperationKind.Execute,
}

_ACTIONS: Final = {
    ast.TableAction.INSERT: OperationKind.Insert,
    ast.TableAction.UPDATE: OperationKind.Update,
    ast.TableAction.ACTIVATE: OperationKind.Activate,
    ast.TableAction.DEACTIVATE: OperationKind.Deactivate,
}

_ALL_TABLE_OPS: Final = frozenset({OperationKind.Select, OperationKind.Insert, OperationKind.Update})
"""What ``ALL`` means on tables: not activation and deactivation, as in Voedger."""

_RESOURCE_KINDS: Final = {
    ast.ResourceKind.COMMAND: frozenset({TypeKind.Command}),
    ast.ResourceKind.QUERY: frozenset({TypeKind.Query}),
    ast.ResourceKind.VIEW: frozenset({TypeKind.View}),
    ast.ResourceKind.TABLE: RECORD_KINDS,
}

_LIMIT_DEFAULT_OPS: Final = {
    ast.ResourceKind.COMMAND: frozenset({OperationKind.Execute}),
    ast.ResourceKind.QUERY: frozenset({OperationKind.Execute}),
    ast.ResourceKind.VIEW: frozenset({OperationKind.Select}),
    ast.ResourceKind.TABLE: RECORD_OPERATIONS,
}

_PERIODS: Final = {
    ast.TimeUnit.SECOND: timedelta(seconds=1),
    ast.TimeUnit.MINUTE: timedelta(minutes=1),
    ast.TimeUnit.HOUR: timedelta(hours=1),
    ast.TimeUnit.DAY: timedelta(days=1),
    ast.TimeUnit.YEAR: timedelta(days=365),
}

_SCOPES: Final = {
    ast.StorageScope.COMMANDS: StorageScope.Commands,
    ast.StorageScope.QUERIES: StorageScope.Queries,
    ast.StorageScope.PROJECTORS: StorageScope.Projectors,
    ast.StorageScope.JOBS: StorageScope.Jobs,
}


class _BuildError(Exception):
    """Aborts the translation of one declaration; the builder records it and goes on."""

    def __init__(self, pos: ast.Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where a statement is: its package, and the workspace it belongs to (None at package level)."""

    pkg: ast.Package
    ws: QName | None


@dataclass(slots=True)
class _WsParts:
    """What the statements of a workspace, and of every ALTER WORKSPACE of it, contribute."""

    stmt: ast.WorkspaceStmt
    ctx: _Ctx
    local: list[QName] = field(default_factory=list)
    used: list[QName] = field(default_factory=list)
    grants: list[ACLRule] = field(default_factory=list)
    revokes: list[ACLRule] = field(default_factory=list)


def _doc(stmt: ast.Statement, with_comment: str | None = None) -> str:
    lines = list(stmt.doc)
    if with_comment:
        lines.append(with_comment)
    return "\n".join(lines)


def _engine(e: ast.Engine) -> ExtensionEngine:
    return ExtensionEngine.WASM if e is ast.Engine.WASM else ExtensionEngine.BuiltIn


def _package_path(pkg: ast.Package) -> str:
    """The package's path as recorded in the AppDef: never a path of the machine that compiled it,
    so that baselines made on one machine compare on another."""
    if pkg.name == SYS_PACKAGE:
        return SYS_PACKAGE
    path = pkg.path.replace("\\", "/")
    return pkg.name if not path or path.startswith("/") or ":" in path else path


class _Builder:
    def __init__(self, packages: Sequence[ast.Package], resolver: Resolver | None) -> None:
        self.packages = list(packages)
        self.resolver = resolver
        self.diagnostics: list[Diagnostic] = []
        self.decls: dict[QName, tuple[ast.Node, _Ctx]] = {}
        self.types: dict[QName, Type] = {}
        self.storages: list[Storage] = []
        self.workspaces: dict[QName, _WsParts] = {}
        self.declares: dict[QName, int] = {}
        self.app_name = ""
        self.limit_pos: dict[QName, ast.Pos] = {}
        self._in_progress: set[QName] = set()

    # ------------------------------------------------------------------ diagnostics

    def error(self, pos: ast.Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos.file, pos.line, pos.col, message))

    # ------------------------------------------------------------------ names

    def resolve(self, ref: ast.DefQName, ctx: _Ctx) -> QName:
        """The QName a reference denotes: the analyser's answer if it gave one, otherwise VSQL's
        lookup (the named package, or the current package and then sys)."""
        if self.resolver is not None:
            found = self.resolver(ref)
            if found is not None:
                return found if isinstance(found, QName) else QName(found[0], found[1])
        if ref.package:
            return QName(self._package_of(ref, ctx), ref.name)
        local = QName(ctx.pkg.name, ref.name)
        if local in self.decls:
            return local
        sys_name = QName(SYS_PACKAGE, ref.name)
        return sys_name if sys_name in self.decls else local

    def _package_of(self, ref: ast.DefQName, ctx: _Ctx) -> str:
        if ref.package in (SYS_PACKAGE, ctx.pkg.name):
            return ref.package
        for imp in ctx.pkg.imports:
            if imp.local_name == ref.package:
                for p in self.packages:
                    if imp.path in (p.path, p.name) or imp.path.endswith("/" + p.name):
                        return p.name
        return ref.package

    def lookup(self, ref: ast.DefQName, ctx: _Ctx, what: str) -> tuple[QName, ast.Node, _Ctx]:
        q = self.resolve(ref, ctx)
        found = self.decls.get(q)
        if found is None:
            raise _BuildError(ref.pos, f"undefined {what}: {ref}")
        return q, found[0], found[1]

    # ------------------------------------------------------------------ pass 1: declarations

    def declare(self, q: QName, node: ast.Node, ctx: _Ctx) -> None:
        if q in self.decls:
            self.error(node.pos, f"{q} is already declared")
            return
        self.decls[q] = (node, ctx)

    def index(self) -> None:
        for pkg in self.packages:
            for stmt in pkg.statements:
                self._index_root(stmt, pkg)
        for pkg in self.packages:
            for stmt in pkg.statements:
                if isinstance(stmt, ast.AlterWorkspaceStmt):
                    self._index_alter(stmt, pkg)

    def _index_root(self, stmt: ast.RootStatement, pkg: ast.Package) -> None:
        ctx = _Ctx(pkg, None)
        if isinstance(stmt, ast.ApplicationStmt):
            self.app_name = stmt.name
        elif isinstance(stmt, ast.DeclareStmt):
            self.declare(QName(pkg.name, stmt.name), stmt, ctx)
            self.declares.setdefault(QName(pkg.name, stmt.name), stmt.default)  # the analyser may override
        elif isinstance(stmt, ast.WorkspaceStmt):
            self._index_workspace(stmt, ctx)
        elif isinstance(stmt, ast.RoleStmt):
            self.declare(QName(pkg.name, stmt.name), stmt, ctx)
        elif isinstance(stmt, ast.ExtEngineStmt):
            for ext in stmt.statements:
                if isinstance(ext, ast.StorageStmt | ast.FunctionStmt):
                    self.declare(QName(pkg.name, ext.name), ext, ctx)

    def _index_workspace(self, stmt: ast.WorkspaceStmt, outer: _Ctx) -> None:
        q = QName(outer.pkg.name, stmt.name)
        self.declare(q, stmt, outer)
        ctx = _Ctx(outer.pkg, q)
        self.workspaces[q] = _WsParts(stmt, ctx)
        desc = self._descriptor_name(stmt)
        if desc is not None:
            node = stmt.descriptor if stmt.descriptor is not None else stmt
            self.declare(QName(outer.pkg.name, desc), node, ctx)
            self.workspaces[q].local.append(QName(outer.pkg.name, desc))
        self._index_ws_statements(stmt.statements, ctx)

    @staticmethod
    def _descriptor_name(stmt: ast.WorkspaceStmt) -> str | None:
        if stmt.descriptor is not None and stmt.descriptor.name:
            return stmt.descriptor.name
        if stmt.abstract:
            return None
        return stmt.name + "Descriptor"

    def _index_alter(self, stmt: ast.AlterWorkspaceStmt, pkg: ast.Package) -> None:
        target = self.resolve(stmt.name, _Ctx(pkg, None))
        if target not in self.workspaces:
            self.error(stmt.name.pos, f"undefined workspace: {stmt.name}")
            return
        self._index_ws_statements(stmt.statements, _Ctx(pkg, target))

    def _index_ws_statements(self, stmts: Sequence[ast.WorkspaceStatement], ctx: _Ctx) -> None:
        assert ctx.ws is not None
        parts = self.workspaces[ctx.ws]
        for s in stmts:
            if isinstance(s, ast.WorkspaceStmt):  # a nested workspace: one its parent may create
                self._index_workspace(s, _Ctx(ctx.pkg, None))
                parts.used.append(QName(ctx.pkg.name, s.name))
            elif isinstance(s, ast.TableStmt):
                self._index_table(s, ctx, parts)
            elif isinstance(s, ast.TypeStmt | ast.ViewStmt | ast.RoleStmt | ast.TagStmt | ast.RateStmt | ast.LimitStmt):
                self._index_local(s, s.name, ctx, parts)
            elif isinstance(s, ast.ExtEngineStmt):
                for ext in s.statements:
                    self._index_local(ext, ext.name, ctx, parts)

    def _index_local(self, node: ast.Node, name: str, ctx: _Ctx, parts: _WsParts) -> None:
        q = QName(ctx.pkg.name, name)
        self.declare(q, node, ctx)
        if not isinstance(node, ast.FunctionStmt | ast.StorageStmt):
            parts.local.append(q)

    def _index_table(self, stmt: ast.TableStmt, ctx: _Ctx, parts: _WsParts) -> None:
        self._index_local(stmt, stmt.name, ctx, parts)
        for item in stmt.items:
            if isinstance(item, ast.NestedTableItem):
                self._index_table(item.table, ctx, parts)

    # ------------------------------------------------------------------ pass 2: types

    def build(self) -> AppDef:
        self.index()
        for q, (node, ctx) in list(self.decls.items()):
            try:
                self.build_decl(q, node, ctx)
            except _BuildError as e:
                self.error(e.pos, str(e))
            except ValueError as e:  # a model invariant the analyser let through
                self.error(node.pos, str(e))
        for parts in self.workspaces.values():
            self.collect_ws(parts)
        self.collect_alters()
        for q, parts in self.workspaces.items():
            try:
                self.build_workspace(q, parts)
            except _BuildError as e:
                self.error(e.pos, str(e))
            except ValueError as e:
                self.error(parts.stmt.pos, str(e))
        if self.diagnostics:
            raise VSQLError(sorted(self.diagnostics))
        packages = [Package(p.name, _package_path(p)) for p in self.packages]
        try:
            app = AppDef(self.app_name, packages=packages, types=self.types.values(), storages=self.storages)
        except (ValueError, KeyError) as e:
            raise VSQLError([Diagnostic("<application>", 1, 1, str(e))]) from None
        self.check_limits(app)
        return app

    def check_limits(self, app: AppDef) -> None:
        """A LIMIT whose filter selects nothing in its workspace is an error, as in Voedger."""
        for q, pos in self.limit_pos.items():
            limit = app.find(q)
            if not isinstance(limit, Limit) or limit.workspace is None:
                continue
            ws = app.find(limit.workspace)
            if isinstance(ws, Workspace) and not any(limit.filter.match(t) for t in ws.types()):
                self.error(pos, f"limit {q} filter «{limit.filter}» has no matches in workspace {ws.qname}")
        if self.diagnostics:
            raise VSQLError(sorted(self.diagnostics))

    def build_decl(self, q: QName, node: ast.Node, ctx: _Ctx) -> None:
        if q in self.types:
            return
        if isinstance(node, ast.TableStmt):
            if ctx.ws is not None and self.workspaces[ctx.ws].stmt.descriptor is node:
                self.build_descriptor(q, node, ctx)
            else:
                self.build_table(q, node, ctx)
        elif isinstance(node, ast.WorkspaceStmt):
            if ctx.ws is not None:  # an implicit descriptor: the declaring node is the workspace
                self.add(
                    Structure(
                        qname=q,
                        kind=TypeKind.CDoc,
                        workspace=ctx.ws,
                        singleton=True,
                        fields=system_fields(TypeKind.CDoc),
                    )
                )
        elif isinstance(node, ast.TypeStmt):
            self.build_object(q, node, ctx)
        elif isinstance(node, ast.ViewStmt):
            self.build_view(q, node, ctx)
        elif isinstance(node, ast.CommandStmt | ast.QueryStmt | ast.ProjectorStmt | ast.JobStmt):
            self.build_extension(q, node, ctx)
        elif isinstance(node, ast.RoleStmt):
            self.add(Role(qname=q, workspace=ctx.ws, comment=_doc(node), published=node.published))
        elif isinstance(node, ast.TagStmt):
            self.add(Tag(qname=q, workspace=ctx.ws, comment=_doc(node), feature=node.feature or ""))
        elif isinstance(node, ast.RateStmt):
            self.build_rate(q, node, ctx)
        elif isinstance(node, ast.LimitStmt):
            self.build_limit(q, node, ctx)
        elif isinstance(node, ast.StorageStmt):
            self.build_storage(q, node)

    def add(self, t: Type) -> None:
        self.types[t.qname] = t

    # ------------------------------------------------------------------ tables and objects

    def table_kind(self, q: QName, pos: ast.Pos) -> tuple[TypeKind, bool]:
        """The kind and singleton flag a table gets from the sys table its INHERITS chain ends in."""
        seen: set[QName] = set()
        while True:
            if q.pkg == SYS_PACKAGE and q.entity in _SYS_ROOTS:
                return _SYS_ROOTS[q.entity]
            if q in seen:
                raise _BuildError(pos, f"circular INHERITS through {q}")
            seen.add(q)
            stmt, ctx = self.decls[q]
            assert isinstance(stmt, ast.TableStmt)
            if stmt.inherits is None:
                raise _BuildError(stmt.pos, f"table {q} must inherit sys.CDoc, sys.WDoc, sys.ODoc or a singleton")
            q, parent, _ = self.lookup(stmt.inherits, ctx, "table")
            if not isinstance(parent, ast.TableStmt):
                raise _BuildError(stmt.inherits.pos, f"{stmt.inherits} is not a table")

    def inherited_items(self, stmt: ast.TableStmt, ctx: _Ctx) -> list[tuple[ast.TableItem, _Ctx]]:
        """The items of a table's ancestors (farthest first), then its own."""
        items: list[tuple[ast.TableItem, _Ctx]] = []
        if stmt.inherits is not None:
            parent, pnode, pctx = self.lookup(stmt.inherits, ctx, "table")
            if parent in self._in_progress:
                raise _BuildError(stmt.inherits.pos, f"circular INHERITS through {parent}")
            if isinstance(pnode, ast.TableStmt):
                self._in_progress.add(parent)
                try:
                    items = self.inherited_items(pnode, pctx)
                finally:
                    self._in_progress.discard(parent)
        items.extend((i, ctx) for i in stmt.items)
        return items

    def build_table(self, q: QName, stmt: ast.TableStmt, ctx: _Ctx, kind: TypeKind | None = None) -> None:
        singleton = False
        if kind is None:
            if q.pkg == SYS_PACKAGE and q.entity in _SYS_ROOTS:
                kind, singleton = _SYS_ROOTS[q.entity]
            else:
                kind, singleton = self.table_kind(q, stmt.pos)
        items = self.inherited_items(stmt, ctx) if kind.is_doc or stmt.inherits else [(i, ctx) for i in stmt.items]
        self.add_structure(
            q,
            kind,
            items,
            ctx,
            abstract=stmt.abstract,
            singleton=singleton,
            inherits=self.resolve(stmt.inherits, ctx) if stmt.inherits else None,
            comment=_doc(stmt, stmt.comment),
            tags=self.tags(stmt.tags, ctx),
        )

    def build_descriptor(self, q: QName, stmt: ast.TableStmt, ctx: _Ctx) -> None:
        self.add_structure(
            q,
            TypeKind.CDoc,
            [(i, ctx) for i in stmt.items],
            ctx,
            singleton=True,
            comment=_doc(stmt, stmt.comment),
        )

    def build_object(self, q: QName, stmt: ast.TypeStmt, ctx: _Ctx) -> None:
        self.add_structure(q, TypeKind.Object, [(i, ctx) for i in stmt.items], ctx, comment=_doc(stmt))

    def add_structure(
        self,
        q: QName,
        kind: TypeKind,
        items: Sequence[tuple[ast.TableItem, _Ctx]],
        ctx: _Ctx,
        *,
        abstract: bool = False,
        singleton: bool = False,
        inherits: QName | None = None,
        comment: str = "",
        tags: tuple[QName, ...] = (),
    ) -> None:
        fields = list(system_fields(kind))
        containers: list[Container] = []
        uniques: list[Unique] = []
        unnamed = 0
        unique_field: str | None = None
        for item, ictx in self.flatten(items):
            if isinstance(item, ast.FieldItem):
                if isinstance(item.type, ast.DataType):
                    fields.append(self.data_field(item))
                else:
                    containers.append(self.container_field(item, kind, ictx))
            elif isinstance(item, ast.RefFieldItem):
                refs = tuple(self.lookup(r, ictx, "table")[0] for r in item.refs)
                fields.append(
                    Field(
                        name=item.name,
                        kind=DataKind.RecordID,
                        required=item.not_null,
                        refs=refs,
                        comment=_doc(item),
                    )
                )
            elif isinstance(item, ast.NestedTableItem):
                child = QName(ictx.pkg.name, item.table.name)
                if child not in self.types:
                    self.build_table(child, item.table, ictx, kind=nested_kind(kind))
                containers.append(
                    Container(name=item.container, type=child, min_occurs=0, max_occurs=NESTED_MAX_OCCURS)
                )
            elif isinstance(item, ast.UniqueFieldConstraint):
                unique_field = item.field.value
            elif isinstance(item, ast.UniqueConstraint):
                if not item.name:
                    unnamed += 1
                name = item.name or f"{unnamed:02d}"
                uniques.append(
                    Unique(
                        name=QName(q.pkg, f"{q.entity}$uniques${name}"),
                        fields=tuple(f.value for f in item.fields),
                        comment=_doc(item),
                    )
                )
        self.add(
            Structure(
                qname=q,
                kind=kind,
                workspace=ctx.ws,
                comment=comment,
                tags=tags,
                fields=tuple(fields),
                containers=tuple(containers),
                uniques=tuple(uniques),
                unique_field=unique_field,
                abstract=abstract,
                singleton=singleton,
                inherits=inherits,
            )
        )

    def flatten(self, items: Sequence[tuple[ast.TableItem, _Ctx]]) -> Iterator[tuple[ast.TableItem, _Ctx]]:
        """Items with field sets (a bare TYPE name) replaced by that TYPE's items."""
        for item, ctx in items:
            if isinstance(item, ast.FieldSetItem):
                _, node, tctx = self.lookup(item.type, ctx, "type")
                if not isinstance(node, ast.TypeStmt):
                    raise _BuildError(item.pos, f"{item.type} is not a TYPE and cannot be used as a field set")
                yield from self.flatten([(i, tctx) for i in node.items])
            else:
                yield item, ctx

    def data_field(self, item: ast.FieldItem) -> Field:
        dt = item.type
        assert isinstance(dt, ast.DataType)
        kind = _DATA_KINDS[dt.kind]
        max_len = None
        if kind in (DataKind.string, DataKind.bytes):
            max_len = dt.length if dt.length is not None else DEFAULT_MAX_LEN
        default: int | str | None = item.default_int if item.default_int is not None else item.default_str
        return Field(
            name=item.name,
            kind=kind,
            required=item.not_null,
            refs=(_BLOB,) if dt.kind is ast.DataKind.BLOB else (),
            max_len=max_len,
            pattern=item.check_regexp,
            verifiable=item.verifiable,
            default=default,
            comment=_doc(item),
        )

    def container_field(self, item: ast.FieldItem, kind: TypeKind, ctx: _Ctx) -> Container:
        assert isinstance(item.type, ast.DefQName)
        target, node, _ = self.lookup(item.type, ctx, "type or table")
        if kind is TypeKind.Object:
            if not isinstance(node, ast.TypeStmt):
                raise _BuildError(item.type.pos, f"{item.type} is not a TYPE: an object can only contain objects")
            return Container(name=item.name, type=target, min_occurs=1 if item.not_null else 0, max_occurs=1)
        if not isinstance(node, ast.TableStmt):
            raise _BuildError(item.type.pos, f"{item.type} is not a table: a table can only contain records")
        return Container(name=item.name, type=target, min_occurs=0, max_occurs=NESTED_MAX_OCCURS)

    def tags(self, refs: Sequence[ast.DefQName], ctx: _Ctx) -> tuple[QName, ...]:
        return tuple(self.resolve(r, ctx) for r in refs)

    # ------------------------------------------------------------------ views

    def view_field(self, f: ast.ViewField | ast.ViewRefField | ast.ViewRecordField, ctx: _Ctx, key: bool) -> Field:
        if isinstance(f, ast.ViewField):
            kind = _DATA_KINDS[f.type.kind]
            max_len = None
            if kind in (DataKind.string, DataKind.bytes):
                max_len = f.type.length if f.type.length is not None else DEFAULT_MAX_LEN
            return Field(name=f.name, kind=kind, required=key or f.not_null, max_len=max_len, comment=_doc(f))
        if isinstance(f, ast.ViewRefField):
            refs = tuple(self.resolve(r, ctx) for r in f.refs)
            return Field(name=f.name, kind=DataKind.RecordID, required=key or f.not_null, refs=refs, comment=_doc(f))
        return Field(name=f.name, kind=DataKind.Record, required=key or f.not_null, comment=_doc(f))

    def build_view(self, q: QName, stmt: ast.ViewStmt, ctx: _Ctx) -> None:
        pk = stmt.primary_key
        if pk is None:
            raise _BuildError(stmt.pos, f"view {q} has no PRIMARY KEY")
        declared = {f.name: f for f in stmt.fields}

        def key(idents: tuple[ast.Ident, ...]) -> tuple[Field, ...]:
            out = []
            for i in idents:
                if i.value not in declared:
                    raise _BuildError(i.pos, f"undefined field {i.value} in the key of view {q}")
                out.append(self.view_field(declared[i.value], ctx, key=True))
            return tuple(out)

        keys = {i.value for i in (*pk.partition, *pk.clustering)}
        self.add(
            View(
                qname=q,
                workspace=ctx.ws,
                comment=_doc(stmt, stmt.comment),
                tags=self.tags(stmt.tags, ctx),
                partition_key=key(pk.partition),
                clustering_columns=key(pk.clustering),
                value=tuple(self.view_field(f, ctx, key=False) for f in stmt.fields if f.name not in keys),
                result_of=self.resolve(stmt.result_of, ctx),
            )
        )

    # ------------------------------------------------------------------ extensions

    def param(self, p: ast.Param | None, ctx: _Ctx) -> QName | None:
        if p is None or p.kind is ast.ParamKind.VOID:
            return None
        if p.kind is ast.ParamKind.ANY:
            return ANY.qname
        assert p.type is not None
        return self.resolve(p.type, ctx)

    def storages_of(self, refs: Sequence[ast.StateStorage], ctx: _Ctx) -> tuple[StorageRef, ...]:
        return tuple(
            StorageRef(self.resolve(s.storage, ctx), tuple(self.resolve(e, ctx) for e in s.entities)) for s in refs
        )

    def build_extension(
        self, q: QName, stmt: ast.CommandStmt | ast.QueryStmt | ast.ProjectorStmt | ast.JobStmt, ctx: _Ctx
    ) -> None:
        engine = _engine(stmt.engine)
        states = self.storages_of(stmt.state, ctx)
        if isinstance(stmt, ast.CommandStmt):
            self.add(
                Command(
                    qname=q,
                    workspace=ctx.ws,
                    comment=_doc(stmt, stmt.comment),
                    tags=self.tags(stmt.tags, ctx),
                    engine=engine,
                    states=states,
                    intents=self.storages_of(stmt.intents, ctx),
                    param=self.param(stmt.param, ctx),
                    unlogged_param=self.param(stmt.unlogged_param, ctx),
                    result=self.param(stmt.returns, ctx),
                )
            )
        elif isinstance(stmt, ast.QueryStmt):
            self.add(
                Query(
                    qname=q,
                    workspace=ctx.ws,
                    comment=_doc(stmt, stmt.comment),
                    tags=self.tags(stmt.tags, ctx),
                    engine=engine,
                    states=states,
                    param=self.param(stmt.param, ctx),
                    result=self.param(stmt.returns, ctx),
                )
            )
        elif isinstance(stmt, ast.ProjectorStmt):
            self.add(
                Projector(
                    qname=q,
                    workspace=ctx.ws,
                    comment=_doc(stmt),
                    engine=engine,
                    states=states,
                    intents=self.storages_of(stmt.intents, ctx),
                    events=tuple(self.trigger(t, ctx) for t in stmt.triggers),
                    sync=stmt.sync,
                    want_errors=stmt.including_errors,
                )
            )
        else:
            self.add(
                Job(
                    qname=q,
                    workspace=ctx.ws,
                    comment=_doc(stmt),
                    engine=engine,
                    states=states,
                    intents=self.storages_of(stmt.intents, ctx),
                    cron=stmt.cron or "",
                )
            )

    def trigger(self, t: ast.ProjectorTrigger, ctx: _Ctx) -> ProjectorEvent:
        if t.cron is not None:
            raise _BuildError(t.pos, "a projector cannot run on a schedule: declare a JOB")
        if t.execute:
            ops = frozenset({OperationKind.ExecuteWithParam if t.with_param else OperationKind.Execute})
        else:
            ops = frozenset(_ACTIONS[a] for a in t.actions)
        names: list[QName] = []
        kinds: set[TypeKind] = set()
        for ref in t.on:
            q = self.resolve(ref, ctx)
            if q in _TRIGGER_KINDS:
                kinds |= _TRIGGER_KINDS[q]
            else:
                names.append(q)
        return ProjectorEvent(ops=ops, filter=Filter(qnames=tuple(names), kinds=frozenset(kinds)))

    def build_storage(self, q: QName, stmt: ast.StorageStmt) -> None:
        ops: dict[StorageOp, frozenset[StorageScope]] = {}
        for op in stmt.ops:
            key = StorageOp(op.op.upper())
            ops[key] = ops.get(key, frozenset()) | {_SCOPES[s] for s in op.scopes}
        entity = StorageEntity.Record if stmt.entity_record else StorageEntity.View if stmt.entity_view else None
        self.storages.append(Storage(qname=q, ops=ops, entity=entity, comment=_doc(stmt)))

    # ------------------------------------------------------------------ rates and limits

    def build_rate(self, q: QName, stmt: ast.RateStmt, ctx: _Ctx) -> None:
        count = stmt.count
        if stmt.variable is not None:
            var = self.resolve(stmt.variable, ctx)
            if var not in self.declares:
                raise _BuildError(stmt.variable.pos, f"undefined variable: {stmt.variable}")
            count = self.declares[var]
        scopes = [RateScope.Workspace if stmt.object_scope is ast.RateObjectScope.WORKSPACE else RateScope.AppPartition]
        if stmt.subject_scope is not None:
            scopes.append(RateScope.User if stmt.subject_scope is ast.RateSubjectScope.SUBJECT else RateScope.IP)
        self.add(
            Rate(
                qname=q,
                workspace=ctx.ws,
                comment=_doc(stmt),
                count=count or 0,
                period=_PERIODS[stmt.unit] * stmt.per_amount,
                scopes=tuple(scopes),
            )
        )

    def build_limit(self, q: QName, stmt: ast.LimitStmt, ctx: _Ctx) -> None:
        flt = stmt.filter
        kinds = _RESOURCE_KINDS[flt.kind]
        tag = (self.resolve(flt.tag, ctx),) if flt.tag is not None else ()
        if flt.scope is ast.TargetScope.ONE:
            if flt.name is None:
                raise _BuildError(flt.pos, "the limit names no resource")
            filter_ = Filter.names(self.resolve(flt.name, ctx))
            option = LimitOption.EACH
        else:
            filter_ = Filter(kinds=kinds, tags=tag)
            option = LimitOption.ALL if flt.scope is ast.TargetScope.ALL else LimitOption.EACH
        ops = frozenset(_OPS[o.op] for o in stmt.ops) or _LIMIT_DEFAULT_OPS[flt.kind]
        self.limit_pos[q] = stmt.pos
        self.add(
            Limit(
                qname=q,
                workspace=ctx.ws,
                comment=_doc(stmt),
                ops=ops,
                option=option,
                filter=filter_,
                rate=self.resolve(stmt.rate, ctx),
            )
        )

    # ------------------------------------------------------------------ workspaces and ACL

    def collect_ws(self, parts: _WsParts) -> None:
        """Gather the ACL and USE WORKSPACE statements of a workspace body."""
        self._collect(parts.stmt.statements, parts.ctx)

    def collect_alters(self) -> None:
        for pkg in self.packages:
            for stmt in pkg.statements:
                if isinstance(stmt, ast.AlterWorkspaceStmt):
                    target = self.resolve(stmt.name, _Ctx(pkg, None))
                    if target in self.workspaces:
                        self._collect(stmt.statements, _Ctx(pkg, target))

    def _collect(self, stmts: Sequence[ast.WorkspaceStatement], ctx: _Ctx) -> None:
        assert ctx.ws is not None
        parts = self.workspaces[ctx.ws]
        for s in stmts:
            try:
                if isinstance(s, ast.GrantStmt):
                    parts.grants.extend(self.rules(s.privilege, PolicyKind.Allow, s.to, s, ctx))
                elif isinstance(s, ast.RevokeStmt):
                    parts.revokes.extend(self.rules(s.privilege, PolicyKind.Deny, s.from_, s, ctx))
                elif isinstance(s, ast.UseWorkspaceStmt):
                    ref = ast.DefQName(pos=s.workspace.pos, package="", name=s.workspace.value)
                    parts.used.append(self.lookup(ref, ctx, "workspace")[0])
            except _BuildError as e:
                self.error(e.pos, str(e))
            except ValueError as e:
                self.error(s.pos, str(e))

    def rules(
        self, p: ast.Privilege, policy: PolicyKind, role: ast.DefQName, stmt: ast.Statement, ctx: _Ctx
    ) -> list[ACLRule]:
        assert ctx.ws is not None
        principal = self.resolve(role, ctx)
        comment = _doc(stmt)

        def rule(ops: frozenset[OperationKind], flt: Filter, cols: tuple[str, ...] = ()) -> ACLRule:
            return ACLRule(
                ops=ops,
                policy=policy,
                filter=flt,
                principal=principal,
                workspace=ctx.ws or SYS_WORKSPACE,
                fields=cols,
                comment=comment,
            )

        if p.kind is ast.ResourceKind.ROLE:
            if p.name is None:
                raise _BuildError(p.pos, "no role to inherit")
            return [rule(frozenset({OperationKind.Inherits}), Filter.names(self.resolve(p.name, ctx)))]
        if p.scope is ast.TargetScope.ONE:
            if p.name is None:
                raise _BuildError(p.pos, "the privilege names no resource")
            flt = Filter.names(self.resolve(p.name, ctx))
        elif p.tag is not None:
            flt = Filter(kinds=_RESOURCE_KINDS[p.kind], tags=(self.resolve(p.tag, ctx),))
        else:
            flt = Filter(kinds=_RESOURCE_KINDS[p.kind], workspace=ctx.ws)
        if p.all_ops:
            return [rule(_ALL_TABLE_OPS, flt, tuple(c.value for c in p.all_columns))]
        # One rule per distinct column list, so that SELECT(a), UPDATE(b) stay apart.
        by_cols: dict[tuple[str, ...], set[OperationKind]] = {}
        for op in p.ops:
            by_cols.setdefault(tuple(c.value for c in op.columns), set()).add(_OPS[op.op])
        return [rule(frozenset(ops), flt, cols) for cols, ops in by_cols.items()]

    def build_workspace(self, q: QName, parts: _WsParts) -> None:
        stmt, ctx = parts.stmt, parts.ctx
        ancestors = [self.lookup(ref, _Ctx(ctx.pkg, None), "workspace")[0] for ref in stmt.inherits]
        if q != SYS_WORKSPACE and SYS_WORKSPACE not in ancestors:
            ancestors.insert(0, SYS_WORKSPACE)
        desc = self._descriptor_name(stmt)
        self.add(
            Workspace(
                qname=q,
                comment=_doc(stmt),
                abstract=stmt.abstract,
                alterable=stmt.alterable,
                pool=stmt.pool,
                descriptor=QName(ctx.pkg.name, desc) if desc else None,
                ancestors=tuple(ancestors),
                used_workspaces=tuple(parts.used),
                local_types=tuple(sorted(t for t in parts.local if t in self.types)),
                acl=tuple(parts.grants + parts.revokes),
            )
        )


def build_appdef(source: AppSchema | Sequence[ast.Package], *, resolver: Resolver | None = None) -> AppDef:
    """Translate an application into its AppDef: the analyser's result (the normal way), or bare
    packages (``sys`` among them) that were not analysed.

    References are resolved as the analyser resolved them; otherwise (or with an explicit
    ``resolver``) they are looked up the way VSQL defines: the named package through the file's
    imports, else the current package, then sys. Raises :class:`VSQLError` with every problem.
    """
    if isinstance(source, AppSchema):
        b = _Builder(list(source.packages.values()), resolver or source.resolve)
        b.declares.update({QName(q.pkg, q.entity): v for q, v in source.variables.items()})
        return b.build()
    return _Builder(source, resolver).build()
