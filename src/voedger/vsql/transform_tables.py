"""Building tables, types and views: fields, constraints, data types, primary keys."""

from __future__ import annotations

import dataclasses
from typing import Any

from lark import Token
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.transform_base import INT64, BuilderBase, Items, Marker, Names, QNames, unquote

__all__ = ["TableBuilder"]

_OPT_NAMES = {
    "not_null": "NOT NULL",
    "verifiable": "VERIFIABLE",
    "default_int": "DEFAULT",
    "default_str": "DEFAULT",
    "check_regexp": "CHECK",
    "check_expr": "CHECK",
}


class TableBuilder(BuilderBase):
    """Rules of tables, nested tables, TYPEs, VIEWs and data types."""

    def table_stmt(self, meta: Meta, children: list[Any]) -> ast.TableStmt:
        rest = [c for c in children if not isinstance(c, Token)]
        name: ast.Ident = rest[0]
        inherits = rest[1] if len(rest) > 1 and isinstance(rest[1], ast.DefQName) else None
        items = self._pick(children, Items)
        with_ = self._marker(children, "with")
        return ast.TableStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=name.value,
            abstract=isinstance(children[0], Token),
            inherits=inherits,
            items=items.items if items else (),
            with_=with_.value if with_ else (),
        )

    def type_stmt(self, meta: Meta, children: list[Any]) -> ast.TypeStmt:
        items = self._pick(children, Items)
        return ast.TypeStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            items=items.items if items else (),
        )

    def table_items(self, meta: Meta, children: list[Any]) -> Items:
        return Items(tuple(children))

    def nested_table(self, meta: Meta, children: list[Any]) -> ast.NestedTableItem:
        return ast.NestedTableItem(pos=self._pos(meta), container=children[0].value, table=children[1])

    def ref_field(self, meta: Meta, children: list[Any]) -> ast.RefFieldItem:
        refs = self._pick(children, QNames)
        return ast.RefFieldItem(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            refs=refs.items if refs else (),
            not_null=self._marker(children, "not_null") is not None,
        )

    def data_field(self, meta: Meta, children: list[Any]) -> ast.FieldItem:
        name: ast.Ident = children[0]
        ftype: ast.FieldType = children[1]
        opts: dict[str, Marker] = {}
        for opt in children[2:]:
            if opt.kind in opts:
                self._err(opt.pos, f"duplicate {_OPT_NAMES[opt.kind]} in field {name.value}")
                continue
            opts[opt.kind] = opt
        regexp = opts.get("check_regexp")
        return ast.FieldItem(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=name.value,
            type=ftype,
            not_null="not_null" in opts,
            verifiable="verifiable" in opts,
            default_int=opts["default_int"].value if "default_int" in opts else None,
            default_str=opts["default_str"].value if "default_str" in opts else None,
            check_regexp=regexp.value if regexp else None,
            check_regexp_pos=regexp.pos if regexp else None,
            check_expr=opts["check_expr"].value if "check_expr" in opts else None,
        )

    def field_set(self, meta: Meta, children: list[ast.DefQName]) -> ast.FieldSetItem:
        return ast.FieldSetItem(pos=self._pos(meta), type=children[0])

    def constraint(self, meta: Meta, children: list[Any]) -> Any:
        name = children[0].value if len(children) > 1 else None
        body = children[-1]
        pos, doc = self._pos(meta), self._doc(meta)
        if body.kind == "unique_field":
            return ast.UniqueFieldConstraint(pos=pos, doc=doc, name=name, field=body.value)
        if body.kind == "unique":
            return ast.UniqueConstraint(pos=pos, doc=doc, name=name, fields=body.value)
        return ast.CheckConstraint(pos=pos, doc=doc, name=name, expr=body.value)

    def unique_field(self, meta: Meta, children: list[ast.Ident]) -> Marker:
        return Marker("unique_field", self._pos(meta), children[0])

    def unique(self, meta: Meta, children: list[Names]) -> Marker:
        return Marker("unique", self._pos(meta), children[0].items)

    def table_check(self, meta: Meta, children: list[ast.Expr]) -> Marker:
        return Marker("check", self._pos(meta), children[0])

    def field_type(self, meta: Meta, children: list[Any]) -> ast.FieldType:
        result: ast.FieldType = children[0]
        return result

    def type_word_qname(self, meta: Meta, children: list[Any]) -> ast.DefQName:
        word: Token = children[0]
        return ast.DefQName(pos=self._tpos(word), package=str(word), name=str(children[1]))

    def type_word(self, meta: Meta, children: list[Token]) -> Token:
        return children[0]

    def opt_not_null(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("not_null", self._pos(meta))

    def opt_verifiable(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("verifiable", self._pos(meta))

    def opt_default_int(self, meta: Meta, children: list[Token]) -> Marker:
        return Marker("default_int", self._pos(meta), self._int(children[0], *INT64, what="DEFAULT"))

    def opt_default_str(self, meta: Meta, children: list[Token]) -> Marker:
        return Marker("default_str", self._pos(meta), unquote(str(children[0])))

    def opt_check_regexp(self, meta: Meta, children: list[Token]) -> Marker:
        return Marker("check_regexp", self._tpos(children[0]), unquote(str(children[0])))

    def opt_check_expr(self, meta: Meta, children: list[ast.Expr]) -> Marker:
        return Marker("check_expr", self._pos(meta), children[0])

    def not_null(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("not_null", self._pos(meta))

    def _dt(self, meta: Meta, kind: ast.DataKind, children: list[Any]) -> ast.DataType:
        length = children[0] if children else None
        return ast.DataType(pos=self._pos(meta), kind=kind, length=length)

    def dt_varchar(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.VARCHAR, children)

    def dt_bytes(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BYTES, children)

    def dt_int8(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT8, [])

    def dt_int16(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT16, [])

    def dt_int32(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT32, [])

    def dt_int64(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT64, [])

    def dt_float32(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.FLOAT32, [])

    def dt_float64(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.FLOAT64, [])

    def dt_timestamp(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.TIMESTAMP, [])

    def dt_currency(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.CURRENCY, [])

    def dt_bool(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BOOL, [])

    def dt_blob(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BLOB, [])

    def dt_qname(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.QNAME, [])

    def length(self, meta: Meta, children: list[Token]) -> int:
        value = int(str(children[0]))
        if value < 0 or str(children[0]).startswith("+"):
            self._err(self._tpos(children[0]), f"invalid length {children[0]}: a positive number is expected")
            return 0
        return value

    def with_clause(self, meta: Meta, children: list[Any]) -> Marker:
        items = tuple(c for c in children if not isinstance(c, Token))
        return Marker("with", self._pos(meta), items)

    def with_comment(self, meta: Meta, children: list[Token]) -> ast.WithComment:
        return ast.WithComment(pos=self._pos(meta), text=unquote(str(children[0])))

    def with_tags(self, meta: Meta, children: list[QNames]) -> ast.WithTags:
        return ast.WithTags(pos=self._pos(meta), tags=children[0].items)

    def view_stmt(self, meta: Meta, children: list[Any]) -> ast.ViewStmt:
        items = self._pick(children, Items)
        with_ = self._marker(children, "with")
        return ast.ViewStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            items=items.items if items else (),
            result_of=self._pick(children, ast.DefQName),
            with_=with_.value if with_ else (),
        )

    def view_items(self, meta: Meta, children: list[Any]) -> Items:
        return Items(tuple(children))

    def primary_key(self, meta: Meta, children: list[ast.PrimaryKey]) -> ast.PrimaryKey:
        pk = children[0]
        if pk.pos.line == 0:  # empty parentheses: place it at PRIMARY KEY
            return dataclasses.replace(pk, pos=self._pos(meta))
        return pk

    def pk_body(self, meta: Meta, children: list[Any]) -> ast.PrimaryKey:
        part = self._marker(children, "partition")
        clust = self._pick(children, Names)
        pos = ast.Pos(self.filename, 0, 0) if meta.empty else self._pos(meta)
        return ast.PrimaryKey(
            pos=pos,
            partition=part.value if part else (),
            clustering=clust.items if clust else (),
        )

    def pk_partition(self, meta: Meta, children: list[Names]) -> Marker:
        return Marker("partition", self._pos(meta), children[0].items)

    def view_ref_field(self, meta: Meta, children: list[Any]) -> ast.ViewRefField:
        refs = self._pick(children, QNames)
        return ast.ViewRefField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            refs=refs.items if refs else (),
            not_null=self._marker(children, "not_null") is not None,
        )

    def view_record_field(self, meta: Meta, children: list[Any]) -> ast.ViewRecordField:
        return ast.ViewRecordField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            not_null=self._marker(children, "not_null") is not None,
        )

    def view_field(self, meta: Meta, children: list[Any]) -> ast.ViewField:
        return ast.ViewField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            type=children[1],
            not_null=self._marker(children, "not_null") is not None,
        )
