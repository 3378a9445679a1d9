"""The typed syntax tree of VSQL.

The parser produces these nodes and the analyser and the appdef builder read them. Every node is a
frozen dataclass with a `pos` (where it starts in its file), so later stages can report errors at the
right place and can share nodes freely. Statements also carry `doc`, the lines of the comment block
written just before them. Names follow Voedger's grammar (`TableStmt`, `ViewStmt`, ...); keep them
stable, other packages build on them.

References to other definitions are written as `DefQName` (an optional package prefix and a name).
The parser does not resolve them: the analyser maps each `DefQName` node to the `QName` it denotes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, TypeAlias

__all__ = [
    "AlterWorkspaceStmt",
    "ApplicationStmt",
    "Between",
    "BinaryOp",
    "CheckConstraint",
    "CommandStmt",
    "DataKind",
    "DataType",
    "DeclareStmt",
    "DefQName",
    "Engine",
    "Expr",
    "ExtEngineStmt",
    "ExtensionStmt",
    "FieldItem",
    "FieldSetItem",
    "FieldType",
    "File",
    "FuncCall",
    "FunctionParam",
    "FunctionStmt",
    "GrantStmt",
    "Ident",
    "ImportStmt",
    "InList",
    "IsNull",
    "JobStmt",
    "LimitFilter",
    "LimitStmt",
    "Literal",
    "NestedTableItem",
    "Node",
    "Operation",
    "Package",
    "Param",
    "ParamKind",
    "Pos",
    "PrimaryKey",
    "Privilege",
    "PrivilegeOp",
    "ProjectorStmt",
    "ProjectorTrigger",
    "QName",
    "QueryStmt",
    "RateObjectScope",
    "RateStmt",
    "RateSubjectScope",
    "RefFieldItem",
    "ResourceKind",
    "RevokeStmt",
    "RoleStmt",
    "RootStatement",
    "StateStorage",
    "Statement",
    "StorageOp",
    "StorageScope",
    "StorageStmt",
    "SymbolRef",
    "TableAction",
    "TableItem",
    "TableStmt",
    "TagStmt",
    "TargetScope",
    "TemplateStmt",
    "TimeUnit",
    "TypeStmt",
    "UnaryOp",
    "UniqueConstraint",
    "UniqueFieldConstraint",
    "UseStmt",
    "UseWorkspaceStmt",
    "ViewField",
    "ViewItem",
    "ViewRecordField",
    "ViewRefField",
    "ViewStmt",
    "WithComment",
    "WithItem",
    "WithTags",
    "WorkspaceStatement",
    "WorkspaceStmt",
]


# --------------------------------------------------------------------------- positions and names


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A place in a schema file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class QName(NamedTuple):
    """A resolved qualified name: the package's local name and the entity's name (``pkg.Entity``)."""

    pkg: str
    entity: str

    def __str__(self) -> str:
        return f"{self.pkg}.{self.entity}"

    @classmethod
    def parse(cls, text: str) -> QName:
        """Split ``pkg.Entity``; raises ValueError when there is no dot."""
        pkg, dot, entity = text.partition(".")
        if not dot or not pkg or not entity:
            raise ValueError(f"not a qualified name: {text!r}")
        return cls(pkg, entity)


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Base of every syntax node."""

    pos: Pos


@dataclass(frozen=True, slots=True, kw_only=True)
class Ident(Node):
    """A bare identifier that refers to something local (a field, a workspace in USE, ...)."""

    value: str

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class DefQName(Node):
    """A reference as written: ``Name`` or ``pkg.Name``; `package` is "" when omitted."""

    package: str
    name: str

    def __str__(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement(Node):
    """Base of every statement: `doc` holds the preceding comment block, one string per line."""

    doc: tuple[str, ...] = ()


# --------------------------------------------------------------------------- data types


class DataKind(StrEnum):
    """The canonical data kinds; every alias of the grammar maps to one of them."""

    VARCHAR = "varchar"
    BYTES = "bytes"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    TIMESTAMP = "timestamp"
    CURRENCY = "currency"
    BOOL = "bool"
    BLOB = "blob"
    QNAME = "qname"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataType(Node):
    """A built-in data type; `length` is set only when written, for varchar and bytes."""

    kind: DataKind
    length: int | None = None


FieldType: TypeAlias = DataType | DefQName
"""The type of a field: a data type, or a TYPE (object) or table (container) named by a reference."""


# --------------------------------------------------------------------------- WITH clause


@dataclass(frozen=True, slots=True, kw_only=True)
class WithComment(Node):
    """``WITH Comment='...'``."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithTags(Node):
    """``WITH Tags=(T1, pkg.T2)``."""

    tags: tuple[DefQName, ...]


WithItem: TypeAlias = WithComment | WithTags


def _with_tags(items: tuple[WithItem, ...]) -> tuple[DefQName, ...]:
    return tuple(t for it in items if isinstance(it, WithTags) for t in it.tags)


def _with_comment(items: tuple[WithItem, ...]) -> str | None:
    texts = [it.text for it in items if isinstance(it, WithComment)]
    return "\n".join(texts) if texts else None


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Node):
    """A constant: int, float, string, TRUE/FALSE or NULL (None)."""

    value: int | float | str | bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolRef(Node):
    """A name in an expression (usually a field)."""

    name: DefQName


@dataclass(frozen=True, slots=True, kw_only=True)
class FuncCall(Node):
    """``f(args)`` in an expression."""

    name: DefQName
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnaryOp(Node):
    """``NOT x`` (op "NOT")."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryOp(Node):
    """``OR``, ``AND``, comparisons (= <> != < > <= >=) and arithmetic (+ - * / %)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class IsNull(Node):
    """``x IS [NOT] NULL``."""

    operand: Expr
    negated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Between(Node):
    """``x BETWEEN low AND high``."""

    operand: Expr
    low: Expr
    high: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class InList(Node):
    """``x IN (a, b, ...)``."""

    operand: Expr
    items: tuple[Expr, ...]


Expr: TypeAlias = Literal | SymbolRef | FuncCall | UnaryOp | BinaryOp | IsNull | Between | InList


# --------------------------------------------------------------------------- tables and types


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldItem(Statement):
    """A data field, or an object/container field when `type` is a reference.

    `check_regexp` is ``CHECK 'pattern'``; `check_expr` is ``CHECK (expr)``.
    """

    name: str
    type: FieldType
    not_null: bool = False
    verifiable: bool = False
    default_int: int | None = None
    default_str: str | None = None
    check_regexp: str | None = None
    check_regexp_pos: Pos | None = None
    check_expr: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefFieldItem(Statement):
    """``Name ref[(T1, T2)] [NOT NULL]``; no targets means a reference to any record."""

    name: str
    refs: tuple[DefQName, ...] = ()
    not_null: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NestedTableItem(Node):
    """``Container TABLE Name (...)``: a nested table that becomes a container of its parent."""

    container: str
    table: TableStmt


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSetItem(Node):
    """A bare reference to a TYPE in a field list: its fields are inlined."""

    type: DefQName


@dataclass(frozen=True, slots=True, kw_only=True)
class UniqueFieldConstraint(Statement):
    """``[CONSTRAINT name] UNIQUEFIELD Field``."""

    name: str | None
    field: Ident


@dataclass(frozen=True, slots=True, kw_only=True)
class UniqueConstraint(Statement):
    """``[CONSTRAINT name] UNIQUE (F1, F2, ...)``."""

    name: str | None
    fields: tuple[Ident, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConstraint(Statement):
    """``[CONSTRAINT name] CHECK (expr)`` at table level."""

    name: str | None
    expr: Expr


TableItem: TypeAlias = (
    FieldItem
    | RefFieldItem
    | NestedTableItem
    | FieldSetItem
    | UniqueFieldConstraint
    | UniqueConstraint
    | CheckConstraint
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TableStmt(Statement):
    """``[ABSTRACT] TABLE Name [INHERITS Base] (...) [WITH ...]``; also the body of a nested table."""

    name: str
    abstract: bool = False
    inherits: DefQName | None = None
    items: tuple[TableItem, ...] = ()
    with_: tuple[WithItem, ...] = ()

    @property
    def tags(self) -> tuple[DefQName, ...]:
        return _with_tags(self.with_)

    @property
    def comment(self) -> str | None:
        return _with_comment(self.with_)


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeStmt(Statement):
    """``TYPE Name (...)``: an object type (no nested tables)."""

    name: str
    items: tuple[TableItem, ...] = ()


# --------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True, kw_only=True)
class PrimaryKey(Node):
    """``PRIMARY KEY ((partition...), clustering...)``."""

    partition: tuple[Ident, ...]
    clustering: tuple[Ident, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewField(Statement):
    """``Name datatype [NOT NULL]`` in a view."""

    name: str
    type: DataType
    not_null: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewRefField(Statement):
    """``Name ref[(T...)] [NOT NULL]`` in a view."""

    name: str
    refs: tuple[DefQName, ...] = ()
    not_null: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewRecordField(Statement):
    """``Name record [NOT NULL]`` in a view (sys package only)."""

    name: str
    not_null: bool = False


ViewItem: TypeAlias = PrimaryKey | ViewField | ViewRefField | ViewRecordField


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewStmt(Statement):
    """``VIEW Name (...) AS RESULT OF Projector [WITH ...]``."""

    name: str
    items: tuple[ViewItem, ...]
    result_of: DefQName
    with_: tuple[WithItem, ...] = ()

    @property
    def tags(self) -> tuple[DefQName, ...]:
        return _with_tags(self.with_)

    @property
    def comment(self) -> str | None:
        return _with_comment(self.with_)

    @property
    def primary_key(self) -> PrimaryKey | None:
        """The first PRIMARY KEY item (the analyser rejects a second one)."""
        return next((it for it in self.items if isinstance(it, PrimaryKey)), None)

    @property
    def fields(self) -> tuple[ViewField | ViewRefField | ViewRecordField, ...]:
        return tuple(it for it in self.items if not isinstance(it, PrimaryKey))


# --------------------------------------------------------------------------- extensions


class Engine(StrEnum):
    """The engine an extension runs in."""

    BUILTIN = "BUILTIN"
    WASM = "WASM"


class ParamKind(StrEnum):
    """What a function parameter or result is: ``any``, ``void`` or a named type."""

    ANY = "any"
    VOID = "void"
    DEF = "def"


@dataclass(frozen=True, slots=True, kw_only=True)
class Param(Node):
    """A command/query parameter or result; `type` is set when `kind` is DEF."""

    kind: ParamKind
    type: DefQName | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StateStorage(Node):
    """An entry of STATE/INTENTS: ``sys.View(V1, V2)``, ``sys.Record(T)``, ``sys.SendMail``."""

    storage: DefQName
    entities: tuple[DefQName, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandStmt(Statement):
    """``COMMAND Name[(Param, UNLOGGED Param)] [STATE(...)] [INTENTS(...)] [RETURNS R] [WITH ...]``."""

    name: str
    engine: Engine
    param: Param | None = None
    unlogged_param: Param | None = None
    state: tuple[StateStorage, ...] = ()
    intents: tuple[StateStorage, ...] = ()
    returns: Param | None = None
    with_: tuple[WithItem, ...] = ()

    @property
    def tags(self) -> tuple[DefQName, ...]:
        return _with_tags(self.with_)

    @property
    def comment(self) -> str | None:
        return _with_comment(self.with_)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryStmt(Statement):
    """``QUERY Name[(Param)] [STATE(...)] RETURNS R [WITH ...]``."""

    name: str
    engine: Engine
    param: Param | None = None
    state: tuple[StateStorage, ...] = ()
    returns: Param | None = None
    with_: tuple[WithItem, ...] = ()

    @property
    def tags(self) -> tuple[DefQName, ...]:
        return _with_tags(self.with_)

    @property
    def comment(self) -> str | None:
        return _with_comment(self.with_)


class TableAction(StrEnum):
    """A record event a projector can follow."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    ACTIVATE = "ACTIVATE"
    DEACTIVATE = "DEACTIVATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectorTrigger(Node):
    """``AFTER EXECUTE [WITH PARAM] ON ...``, ``AFTER INSERT OR UPDATE ON ...`` or ``CRON '...'``.

    Exactly one of `cron`, `execute` or non-empty `actions` is set; `on` is empty only for CRON.
    """

    on: tuple[DefQName, ...] = ()
    execute: bool = False
    with_param: bool = False
    actions: tuple[TableAction, ...] = ()
    cron: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectorStmt(Statement):
    """``[SYNC] PROJECTOR Name Trigger {OR Trigger} [STATE] [INTENTS] [INCLUDING ERRORS]``."""

    name: str
    engine: Engine
    triggers: tuple[ProjectorTrigger, ...]
    sync: bool = False
    state: tuple[StateStorage, ...] = ()
    intents: tuple[StateStorage, ...] = ()
    including_errors: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStmt(Statement):
    """``JOB Name 'cron' [STATE(...)] [INTENTS(...)]``."""

    name: str
    engine: Engine
    cron: str | None = None
    cron_pos: Pos | None = None
    state: tuple[StateStorage, ...] = ()
    intents: tuple[StateStorage, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionParam(Node):
    """A parameter of FUNCTION: optional name and a type."""

    name: str | None
    type: FieldType


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionStmt(Statement):
    """``FUNCTION Name(params) RETURNS type`` (parsed, not built)."""

    name: str
    engine: Engine
    params: tuple[FunctionParam, ...]
    returns: FieldType


class StorageScope(StrEnum):
    """Extension kinds a storage operation is open to."""

    COMMANDS = "COMMANDS"
    QUERIES = "QUERIES"
    PROJECTORS = "PROJECTORS"
    JOBS = "JOBS"


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageOp(Node):
    """``GET|GETBATCH|READ|INSERT|UPDATE SCOPE(...)``."""

    op: str
    scopes: tuple[StorageScope, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageStmt(Statement):
    """``STORAGE Name(ops) [ENTITY RECORD] [ENTITY VIEW]`` (sys package only)."""

    name: str
    ops: tuple[StorageOp, ...]
    entity_record: bool = False
    entity_view: bool = False


ExtensionStmt: TypeAlias = CommandStmt | QueryStmt | ProjectorStmt | JobStmt | FunctionStmt | StorageStmt


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtEngineStmt(Statement):
    """``EXTENSION ENGINE BUILTIN|WASM (...)``; each statement inside also records the engine."""

    engine: Engine
    statements: tuple[ExtensionStmt, ...] = ()


# --------------------------------------------------------------------------- roles, tags, ACL


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleStmt(Statement):
    """``[PUBLISHED] ROLE Name``."""

    name: str
    published: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TagStmt(Statement):
    """``TAG Name [FEATURE 'text']``."""

    name: str
    feature: str | None = None


class Operation(StrEnum):
    """An operation named in GRANT, REVOKE and LIMIT."""

    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    ACTIVATE = "ACTIVATE"
    DEACTIVATE = "DEACTIVATE"
    EXECUTE = "EXECUTE"


class ResourceKind(StrEnum):
    """What a privilege or limit applies to; ROLE is role inheritance (``GRANT RoleA TO RoleB``)."""

    COMMAND = "COMMAND"
    QUERY = "QUERY"
    VIEW = "VIEW"
    TABLE = "TABLE"
    ROLE = "ROLE"


class TargetScope(StrEnum):
    """``ON TABLE x`` (ONE), ``ON ALL TABLES [WITH TAG t]`` (ALL), ``ON EACH TABLE`` (EACH, limits only)."""

    ONE = "ONE"
    ALL = "ALL"
    EACH = "EACH"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivilegeOp(Node):
    """One operation of a privilege, with optional columns (``UPDATE(a, b)``, ``SELECT(sys.ID)``)."""

    op: Operation
    columns: tuple[Ident, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Privilege(Node):
    """The ``<what> ON <target>`` part of GRANT/REVOKE.

    - ``kind`` ROLE: role inheritance, ``name`` is the granted role.
    - ``scope`` ONE: ``name`` is the command/query/view/table; ALL: ``tag`` optionally filters.
    - ``all_ops`` is ``ALL [(columns)]`` on tables (``all_columns``); otherwise ``ops`` lists them.
      EXECUTE (commands, queries) and SELECT (views) are given in ``ops`` too.
    """

    kind: ResourceKind
    scope: TargetScope = TargetScope.ONE
    name: DefQName | None = None
    tag: DefQName | None = None
    ops: tuple[PrivilegeOp, ...] = ()
    all_ops: bool = False
    all_columns: tuple[Ident, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantStmt(Statement):
    """``GRANT privilege TO Role``."""

    privilege: Privilege
    to: DefQName


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeStmt(Statement):
    """``REVOKE privilege FROM Role``."""

    privilege: Privilege
    from_: DefQName


# --------------------------------------------------------------------------- rates and limits


class TimeUnit(StrEnum):
    """The period unit of a RATE (plural spellings map here too)."""

    SECOND = "SECOND"
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"
    YEAR = "YEAR"


class RateObjectScope(StrEnum):
    """``PER APP PARTITION`` or ``PER WORKSPACE``."""

    APP_PARTITION = "APP_PARTITION"
    WORKSPACE = "WORKSPACE"


class RateSubjectScope(StrEnum):
    """``PER SUBJECT`` or ``PER IP``."""

    SUBJECT = "SUBJECT"
    IP = "IP"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateStmt(Statement):
    """``RATE Name (count | Variable) PER [amount] unit [PER ...] [PER ...]``.

    Exactly one of `count` and `variable` is set; `per_amount` is 1 when omitted.
    """

    name: str
    unit: TimeUnit
    count: int | None = None
    variable: DefQName | None = None
    per_amount: int = 1
    object_scope: RateObjectScope | None = None
    subject_scope: RateSubjectScope | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitFilter(Node):
    """``ON COMMAND x`` / ``ON ALL COMMANDS [WITH TAG t]`` / ``ON EACH COMMAND [WITH TAG t]``."""

    kind: ResourceKind
    scope: TargetScope
    name: DefQName | None = None
    tag: DefQName | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitStmt(Statement):
    """``LIMIT Name [ops] ON ... WITH RATE Rate``; `ops` empty means the kind's default operations."""

    name: str
    ops: tuple[PrivilegeOp, ...]
    filter: LimitFilter
    rate: DefQName


# --------------------------------------------------------------------------- workspaces and root


@dataclass(frozen=True, slots=True, kw_only=True)
class UseWorkspaceStmt(Statement):
    """``USE WORKSPACE Name`` inside a workspace."""

    workspace: Ident


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceStmt(Statement):
    """``[ABSTRACT|ALTERABLE] [POOL OF] WORKSPACE Name [INHERITS ...] ([DESCRIPTOR ...;] ...)``.

    `descriptor` is the DESCRIPTOR clause as written (a TableStmt whose `name` is "" when omitted);
    the analyser gives non-abstract workspaces their default descriptor ``<Name>Descriptor``.
    """

    name: str
    abstract: bool = False
    alterable: bool = False
    pool: bool = False
    inherits: tuple[DefQName, ...] = ()
    descriptor: TableStmt | None = None
    statements: tuple[WorkspaceStatement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterWorkspaceStmt(Statement):
    """``ALTER WORKSPACE pkg.Name (...)``: adds statements to an existing workspace."""

    name: DefQName
    statements: tuple[WorkspaceStatement, ...] = ()


WorkspaceStatement: TypeAlias = (
    RateStmt
    | ViewStmt
    | UseWorkspaceStmt
    | RoleStmt
    | TagStmt
    | ExtEngineStmt
    | WorkspaceStmt
    | TableStmt
    | TypeStmt
    | LimitStmt
    | GrantStmt
    | RevokeStmt
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportStmt(Statement):
    """``IMPORT SCHEMA 'path' [AS alias]``."""

    path: str
    alias: str | None = None

    @property
    def local_name(self) -> str:
        """The name this file uses for the package: the alias, or the path's last element."""
        return self.alias if self.alias else self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class UseStmt(Statement):
    """``USE Pkg`` inside APPLICATION."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationStmt(Statement):
    """``APPLICATION Name (USE a; USE b)``."""

    name: str
    uses: tuple[UseStmt, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclareStmt(Statement):
    """``DECLARE Name int32 DEFAULT n``: a variable usable as a RATE count."""

    name: str
    data_type: DataKind
    default: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateStmt(Statement):
    """``TEMPLATE Name OF WORKSPACE ws SOURCE src`` (parsed, not built)."""

    name: str
    workspace: DefQName
    source: str


RootStatement: TypeAlias = (
    TemplateStmt | RoleStmt | ExtEngineStmt | WorkspaceStmt | AlterWorkspaceStmt | ApplicationStmt | DeclareStmt
)


@dataclass(frozen=True, slots=True, kw_only=True)
class File(Node):
    """One parsed schema file; `pos` is its start."""

    path: str
    imports: tuple[ImportStmt, ...] = ()
    statements: tuple[RootStatement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """The files of one folder: a package's name is its folder's name."""

    name: str
    path: str
    files: tuple[File, ...] = field(default=())

    @property
    def imports(self) -> tuple[ImportStmt, ...]:
        return tuple(i for f in self.files for i in f.imports)

    @property
    def statements(self) -> tuple[RootStatement, ...]:
        return tuple(s for f in self.files for s in f.statements)
