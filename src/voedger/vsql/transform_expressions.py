"""Building CHECK expressions."""

from __future__ import annotations

from typing import Any

from lark import Token
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.transform_base import BuilderBase, unquote

__all__ = ["ExpressionBuilder"]


class ExpressionBuilder(BuilderBase):
    """Rules of the expression sub-grammar; binary chains fold to the left."""

    def _fold(self, meta: Meta, op: str, children: list[ast.Expr]) -> ast.Expr:
        result = children[0]
        for right in children[1:]:
            result = ast.BinaryOp(pos=self._pos(meta), op=op, left=result, right=right)
        return result

    def or_expr(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return self._fold(meta, "OR", children)

    def and_expr(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return self._fold(meta, "AND", children)

    def not_op(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.UnaryOp(pos=self._pos(meta), op="NOT", operand=children[0])

    def compare(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.BinaryOp(pos=self._pos(meta), op=str(children[1]), left=children[0], right=children[2])

    def arith(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.BinaryOp(pos=self._pos(meta), op=str(children[1]), left=children[0], right=children[2])

    def is_null(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.IsNull(pos=self._pos(meta), operand=children[0], negated=len(children) > 1)

    def between(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.Between(pos=self._pos(meta), operand=children[0], low=children[1], high=children[2])

    def in_list(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.InList(pos=self._pos(meta), operand=children[0], items=tuple(children[1:]))

    def symbol_ref(self, meta: Meta, children: list[ast.DefQName]) -> ast.Expr:
        return ast.SymbolRef(pos=self._pos(meta), name=children[0])

    def func_call(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.FuncCall(pos=self._pos(meta), name=children[0], args=tuple(children[1:]))

    def lit_int(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=int(str(children[0])))

    def lit_float(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=float(str(children[0])))

    def lit_str(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=unquote(str(children[0])))

    def lit_true(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=True)

    def lit_false(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=False)

    def lit_null(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=None)
