"""VSQL, the schema language of Voedger applications: parse, then analyse.

`parse_string`/`parse_file`/`parse_package` turn text into the syntax tree of `voedger.vsql.ast`;
`load_app_packages` parses an application folder with the packages it imports and sys; `analyse`
resolves names across packages and checks the semantic rules. Every stage raises `VSQLError` with
all the problems found, each printed as ``file:line:col: message``.
"""

from voedger.vsql.analyser import analyse
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.loader import default_sys_dir, load_app_packages
from voedger.vsql.parser import parse_file, parse_package, parse_string
from voedger.vsql.schema import AppSchema, TableInfo, TableKind, WorkspaceInfo

__all__ = [
    "AppSchema",
    "Diagnostic",
    "TableInfo",
    "TableKind",
    "VSQLError",
    "WorkspaceInfo",
    "analyse",
    "default_sys_dir",
    "load_app_packages",
    "parse_file",
    "parse_package",
    "parse_string",
]
