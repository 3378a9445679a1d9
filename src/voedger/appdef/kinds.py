"""Enumerations of the model: kinds of types, of data and of operations.

Member values are Voedger's names (without their Go prefixes), so that they read the same in
baselines, error messages and API answers as they do in Voedger.
"""

from __future__ import annotations

import builtins
from enum import StrEnum
from typing import Final

__all__ = [
    "ACL_OPERATIONS",
    "DOC_KINDS",
    "EXTENSION_KINDS",
    "FUNCTION_KINDS",
    "LIMITABLE_OPERATIONS",
    "PROJECTOR_OPERATIONS",
    "RECORD_KINDS",
    "RECORD_OPERATIONS",
    "STRUCTURE_KINDS",
    "DataKind",
    "ExtensionEngine",
    "LimitOption",
    "OperationKind",
    "PolicyKind",
    "RateScope",
    "TypeKind",
    "nested_kind",
]


class TypeKind(StrEnum):
    """What a type is; one per kind of VSQL declaration (and ``Data`` for the system data types)."""

    Any = "Any"
    Data = "Data"
    Tag = "Tag"
    GDoc = "GDoc"
    CDoc = "CDoc"
    WDoc = "WDoc"
    ODoc = "ODoc"
    GRecord = "GRecord"
    CRecord = "CRecord"
    WRecord = "WRecord"
    ORecord = "ORecord"
    Object = "Object"
    View = "View"
    Command = "Command"
    Query = "Query"
    Projector = "Projector"
    Job = "Job"
    Workspace = "Workspace"
    Role = "Role"
    Rate = "Rate"
    Limit = "Limit"

    @property
    def is_doc(self) -> bool:
        return self in DOC_KINDS

    @property
    def is_record(self) -> bool:
        """Docs count as records, as in Voedger: both have ``sys.ID`` and live in storage."""
        return self in RECORD_KINDS

    @property
    def is_structure(self) -> bool:
        return self in STRUCTURE_KINDS

    @property
    def is_function(self) -> bool:
        return self in FUNCTION_KINDS

    @property
    def is_extension(self) -> bool:
        return self in EXTENSION_KINDS


DOC_KINDS: Final = frozenset({TypeKind.GDoc, TypeKind.CDoc, TypeKind.WDoc, TypeKind.ODoc})
RECORD_KINDS: Final = DOC_KINDS | {TypeKind.GRecord, TypeKind.CRecord, TypeKind.WRecord, TypeKind.ORecord}
STRUCTURE_KINDS: Final = RECORD_KINDS | {TypeKind.Object}
FUNCTION_KINDS: Final = frozenset({TypeKind.Command, TypeKind.Query})
EXTENSION_KINDS: Final = FUNCTION_KINDS | {TypeKind.Projector, TypeKind.Job}

_NESTED: Final = {
    TypeKind.GDoc: TypeKind.GRecord,
    TypeKind.CDoc: TypeKind.CRecord,
    TypeKind.WDoc: TypeKind.WRecord,
    TypeKind.ODoc: TypeKind.ORecord,
    TypeKind.GRecord: TypeKind.GRecord,
    TypeKind.CRecord: TypeKind.CRecord,
    TypeKind.WRecord: TypeKind.WRecord,
    TypeKind.ORecord: TypeKind.ORecord,
    TypeKind.Object: TypeKind.Object,
}


def nested_kind(parent: TypeKind) -> TypeKind:
    """The kind a nested table (or nested object) gets from its parent: CDoc -> CRecord, ..."""
    try:
        return _NESTED[parent]
    except KeyError:
        raise ValueError(f"a {parent} cannot hold nested structures") from None


class DataKind(StrEnum):
    """The kind of a field's value."""

    int8 = "int8"
    int16 = "int16"
    int32 = "int32"
    int64 = "int64"
    float32 = "float32"
    float64 = "float64"
    bytes = "bytes"
    string = "string"
    QName = "QName"
    bool = "bool"
    RecordID = "RecordID"
    # Complex kinds, only in sys views and storages.
    Record = "Record"
    Event = "Event"

    @property
    def is_fixed_width(self) -> builtins.bool:
        """Fixed-width kinds may be anywhere in a view key; variable ones only last."""
        return self not in (DataKind.bytes, DataKind.string, DataKind.Record, DataKind.Event)


class OperationKind(StrEnum):
    """Operations that ACL rules, limits and projector triggers speak about."""

    Insert = "Insert"
    Update = "Update"
    Activate = "Activate"
    Deactivate = "Deactivate"
    Select = "Select"
    Execute = "Execute"
    ExecuteWithParam = "ExecuteWithParam"
    Inherits = "Inherits"


RECORD_OPERATIONS: Final = frozenset(
    {
        OperationKind.Insert,
        OperationKind.Update,
        OperationKind.Activate,
        OperationKind.Deactivate,
        OperationKind.Select,
    }
)
ACL_OPERATIONS: Final = RECORD_OPERATIONS | {OperationKind.Execute, OperationKind.Inherits}
LIMITABLE_OPERATIONS: Final = RECORD_OPERATIONS | {OperationKind.Execute}
PROJECTOR_OPERATIONS: Final = RECORD_OPERATIONS | {OperationKind.Execute, OperationKind.ExecuteWithParam}


class ExtensionEngine(StrEnum):
    """Who runs an extension: the platform's Python code (BUILTIN) or an application module (WASM)."""

    BuiltIn = "BuiltIn"
    WASM = "WASM"


class PolicyKind(StrEnum):
    """Whether an ACL rule grants or revokes."""

    Allow = "Allow"
    Deny = "Deny"


class RateScope(StrEnum):
    """What a rate counts per: an application partition, a workspace, a user or an IP address."""

    AppPartition = "AppPartition"
    Workspace = "Workspace"
    User = "User"
    IP = "IP"


class LimitOption(StrEnum):
    """Whether a limit shares one counter by ALL matched types or keeps one for EACH."""

    ALL = "ALL"
    EACH = "EACH"
