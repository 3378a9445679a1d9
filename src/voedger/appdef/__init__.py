"""The application model: an immutable definition of an application that the runtime reads.

``voedger.appdef.build`` makes one from analysed VSQL; ``voedger.appdef.compat`` compares two.
"""

from voedger.appdef.acl import ACLRule, Role
from voedger.appdef.app import AppDef, Package, UnknownTypeError
from voedger.appdef.base import ANY, Data, Tag, Type
from voedger.appdef.extensions import Command, Extension, Function, Job, Projector, ProjectorEvent, Query
from voedger.appdef.fields import (
    DEFAULT_MAX_LEN,
    MAX_LEN,
    NESTED_MAX_OCCURS,
    SYS_CONTAINER,
    SYS_ID,
    SYS_IS_ACTIVE,
    SYS_PARENT_ID,
    SYS_QNAME,
    UNBOUNDED,
    Container,
    Field,
    Unique,
    system_fields,
)
from voedger.appdef.filters import Filter
from voedger.appdef.kinds import (
    DataKind,
    ExtensionEngine,
    LimitOption,
    OperationKind,
    PolicyKind,
    RateScope,
    TypeKind,
    nested_kind,
)
from voedger.appdef.qname import SYS_PACKAGE, QName, QNameError, qname
from voedger.appdef.rates import Limit, Rate
from voedger.appdef.storages import Storage, StorageEntity, StorageOp, StorageRef, StorageScope
from voedger.appdef.structures import Structure
from voedger.appdef.views import View
from voedger.appdef.workspaces import SYS_WORKSPACE, Workspace

__all__ = [
    "ANY",
    "DEFAULT_MAX_LEN",
    "MAX_LEN",
    "NESTED_MAX_OCCURS",
    "SYS_CONTAINER",
    "SYS_ID",
    "SYS_IS_ACTIVE",
    "SYS_PACKAGE",
    "SYS_PARENT_ID",
    "SYS_QNAME",
    "SYS_WORKSPACE",
    "UNBOUNDED",
    "ACLRule",
    "AppDef",
    "Command",
    "Container",
    "Data",
    "DataKind",
    "Extension",
    "ExtensionEngine",
    "Field",
    "Filter",
    "Function",
    "Job",
    "Limit",
    "LimitOption",
    "OperationKind",
    "Package",
    "PolicyKind",
    "Projector",
    "ProjectorEvent",
    "QName",
    "QNameError",
    "Query",
    "Rate",
    "RateScope",
    "Role",
    "Storage",
    "StorageEntity",
    "StorageOp",
    "StorageRef",
    "StorageScope",
    "Structure",
    "Tag",
    "Type",
    "TypeKind",
    "Unique",
    "UnknownTypeError",
    "View",
    "Workspace",
    "nested_kind",
    "qname",
    "system_fields",
]
