"""State shared by every check, and name lookups that report what they cannot find."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic
from voedger.vsql.schema import TableInfo
from voedger.vsql.symbols import Ctx, Decl, DeclKind, NameLookupError, PackageInfo, SymbolTable

__all__ = ["UNDEFINED", "AnalyserBase", "kinds"]

UNDEFINED = {
    DeclKind.TABLE: "undefined table: {}",
    DeclKind.DESCRIPTOR: "undefined table: {}",
    DeclKind.COMMAND: "undefined command: {}",
    DeclKind.QUERY: "undefined query: {}",
    DeclKind.TAG: "undefined tag: {}",
    DeclKind.ROLE: "undefined role: {}",
    DeclKind.TYPE: "undefined type: {}",
    DeclKind.WORKSPACE: "undefined workspace: {}",
    DeclKind.PROJECTOR: "undefined projector: {}",
    DeclKind.RATE: "undefined rate: {}",
    DeclKind.VIEW: "undefined view: {}",
}
"""Voedger's message for a name of each kind that is not found."""


def kinds(*k: DeclKind) -> frozenset[DeclKind]:
    return frozenset(k)


class AnalyserBase:
    """What every check needs: the symbol table, the results so far and the problems found."""

    def __init__(
        self,
        packages: Sequence[ast.Package],
        variables: Mapping[str, int],
        import_map: Mapping[str, str],
    ) -> None:
        self.input = list(packages)
        self.variables_in = dict(variables)
        self.diagnostics: list[Diagnostic] = []
        self.infos: dict[str, PackageInfo] = {}
        self.st = SymbolTable(self.infos, import_map)
        self.resolved: dict[ast.DefQName | ast.Ident, ast.QName] = {}
        self.decl_of: dict[int, Decl] = {}
        self.tables: dict[int, TableInfo] = {}
        self.ws_used: dict[int, list[Decl]] = {}
        self.app_name = ""
        self.app_package = ""
        self.variables: dict[ast.QName, int] = {}
        self.rate_counts: dict[ast.QName, int] = {}

    def err(self, pos: ast.Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos.file, pos.line, pos.col, message))

    def _first_pos(self, pkg: ast.Package) -> ast.Pos:
        return pkg.files[0].pos if pkg.files else ast.Pos(pkg.path or pkg.name, 1, 1)

    def find(self, ref: ast.DefQName, kinds: frozenset[DeclKind], ctx: Ctx) -> Decl | None:
        """Resolve quietly: None when not found (or when the package prefix is wrong)."""
        try:
            decl = self.st.find(ref, kinds, ctx)
        except NameLookupError:
            return None
        if decl is not None:
            self.resolved[ref] = decl.qname
        return decl

    def resolve(
        self, ref: ast.DefQName, kinds: frozenset[DeclKind], ctx: Ctx, undefined: str | None = None
    ) -> Decl | None:
        """Resolve and report: the declaration, or None after reporting why not."""
        try:
            decl = self.st.find(ref, kinds, ctx)
        except NameLookupError as e:
            self.err(ref.pos, str(e))
            return None
        if decl is None:
            if undefined is None:
                undefined = UNDEFINED.get(next(iter(kinds)), "{} undefined") if len(kinds) == 1 else "{} undefined"
            self.err(ref.pos, undefined.format(ref))
            return None
        self.resolved[ref] = decl.qname
        return decl

    def ctx_of(self, decl: Decl) -> Ctx:
        return Ctx(decl.package, decl.workspace)

    def info_of(self, decl: Decl) -> TableInfo | None:
        return self.tables.get(id(decl))

    def with_(self, items: tuple[ast.WithItem, ...], ctx: Ctx) -> None:
        for item in items:
            if isinstance(item, ast.WithTags):
                for tag in item.tags:
                    self.resolve(tag, kinds(DeclKind.TAG), ctx)
