"""Building EXTENSION ENGINE blocks: commands, queries, projectors, jobs, functions, storages."""

from __future__ import annotations

import dataclasses
from typing import Any

from lark import Token
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.transform_base import BuilderBase, Items, Marker, QNames, unquote

__all__ = ["ExtensionBuilder"]


class ExtensionBuilder(BuilderBase):
    """Rules of extensions; each statement gets the engine of its block."""

    def ext_engine_stmt(self, meta: Meta, children: list[Any]) -> ast.ExtEngineStmt:
        engine = ast.Engine(children[0])
        items = self._pick(children, Items)
        stmts = tuple(
            s if isinstance(s, ast.StorageStmt) else dataclasses.replace(s, engine=engine)
            for s in (items.items if items else ())
        )
        return ast.ExtEngineStmt(pos=self._pos(meta), doc=self._doc(meta), engine=engine, statements=stmts)

    def engine(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def ext_list(self, meta: Meta, children: list[Any]) -> Items:
        return Items(tuple(children))

    def command_stmt(self, meta: Meta, children: list[Any]) -> ast.CommandStmt:
        params = self._marker(children, "cmd_params")
        param, unlogged = params.value if params else (None, None)
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        returns = self._marker(children, "returns")
        with_ = self._marker(children, "with")
        return ast.CommandStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            param=param,
            unlogged_param=unlogged,
            state=state.value if state else (),
            intents=intents.value if intents else (),
            returns=returns.value if returns else None,
            with_=with_.value if with_ else (),
        )

    def command_params(self, meta: Meta, children: list[Any]) -> Marker:
        param = self._pick(children, ast.Param)
        unlogged = self._marker(children, "unlogged")
        return Marker("cmd_params", self._pos(meta), (param, unlogged.value if unlogged else None))

    def unlogged_param(self, meta: Meta, children: list[ast.Param]) -> Marker:
        return Marker("unlogged", self._pos(meta), children[0])

    def query_stmt(self, meta: Meta, children: list[Any]) -> ast.QueryStmt:
        params = self._marker(children, "query_params")
        state = self._marker(children, "state")
        returns = self._marker(children, "returns")
        with_ = self._marker(children, "with")
        return ast.QueryStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            param=params.value if params else None,
            state=state.value if state else (),
            returns=returns.value if returns else None,
            with_=with_.value if with_ else (),
        )

    def query_params(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("query_params", self._pos(meta), children[0] if children else None)

    def returns(self, meta: Meta, children: list[ast.Param]) -> Marker:
        return Marker("returns", self._pos(meta), children[0])

    def param_any(self, meta: Meta, children: list[Any]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.ANY)

    def param_void(self, meta: Meta, children: list[Any]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.VOID)

    def param_def(self, meta: Meta, children: list[ast.DefQName]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.DEF, type=children[0])

    def state(self, meta: Meta, children: list[ast.StateStorage]) -> Marker:
        return Marker("state", self._pos(meta), tuple(children))

    def intents(self, meta: Meta, children: list[ast.StateStorage]) -> Marker:
        return Marker("intents", self._pos(meta), tuple(children))

    def state_storage(self, meta: Meta, children: list[Any]) -> ast.StateStorage:
        entities = self._pick(children, QNames)
        return ast.StateStorage(pos=self._pos(meta), storage=children[0], entities=entities.items if entities else ())

    def projector_stmt(self, meta: Meta, children: list[Any]) -> ast.ProjectorStmt:
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        return ast.ProjectorStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=self._pick(children, ast.Ident).value,
            engine=ast.Engine.BUILTIN,
            triggers=tuple(c for c in children if isinstance(c, ast.ProjectorTrigger)),
            sync=isinstance(children[0], Token),
            state=state.value if state else (),
            intents=intents.value if intents else (),
            including_errors=self._marker(children, "including_errors") is not None,
        )

    def including_errors(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("including_errors", self._pos(meta))

    def trigger_execute(self, meta: Meta, children: list[Any]) -> ast.ProjectorTrigger:
        return ast.ProjectorTrigger(
            pos=self._pos(meta),
            on=children[-1].value,
            execute=True,
            with_param=self._marker(children, "with_param") is not None,
        )

    def trigger_actions(self, meta: Meta, children: list[Any]) -> ast.ProjectorTrigger:
        actions = tuple(c for c in children if isinstance(c, ast.TableAction))
        for i, act in enumerate(actions):
            if act in actions[:i]:
                self._err(self._pos(meta), f"duplicate {act} in projector trigger")
        return ast.ProjectorTrigger(pos=self._pos(meta), on=children[-1].value, actions=actions)

    def trigger_cron(self, meta: Meta, children: list[Token]) -> ast.ProjectorTrigger:
        return ast.ProjectorTrigger(pos=self._pos(meta), cron=unquote(str(children[0])))

    def with_param(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("with_param", self._pos(meta))

    def table_action(self, meta: Meta, children: list[Token]) -> ast.TableAction:
        return ast.TableAction(str(children[0]))

    def trigger_target(self, meta: Meta, children: list[Any]) -> Marker:
        first = children[0]
        items = first.items if isinstance(first, QNames) else (first,)
        return Marker("target", self._pos(meta), items)

    def job_stmt(self, meta: Meta, children: list[Any]) -> ast.JobStmt:
        cron = next((c for c in children if isinstance(c, Token)), None)
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        return ast.JobStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            cron=unquote(str(cron)) if cron is not None else None,
            cron_pos=self._tpos(cron) if cron is not None else None,
            state=state.value if state else (),
            intents=intents.value if intents else (),
        )

    def function_stmt(self, meta: Meta, children: list[Any]) -> ast.FunctionStmt:
        params = self._pick(children, Items)
        return ast.FunctionStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            params=params.items if params else (),
            returns=children[-1],
        )

    def function_params(self, meta: Meta, children: list[ast.FunctionParam]) -> Items:
        return Items(tuple(children))

    def named_function_param(self, meta: Meta, children: list[Any]) -> ast.FunctionParam:
        return ast.FunctionParam(pos=self._pos(meta), name=children[0].value, type=children[1])

    def unnamed_function_param(self, meta: Meta, children: list[Any]) -> ast.FunctionParam:
        return ast.FunctionParam(pos=self._pos(meta), name=None, type=children[0])

    def storage_stmt(self, meta: Meta, children: list[Any]) -> ast.StorageStmt:
        entities = [c.value for c in children if isinstance(c, Marker) and c.kind == "entity"]
        return ast.StorageStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            ops=tuple(c for c in children if isinstance(c, ast.StorageOp)),
            entity_record="RECORD" in entities,
            entity_view="VIEW" in entities,
        )

    def storage_op(self, meta: Meta, children: list[Any]) -> ast.StorageOp:
        return ast.StorageOp(pos=self._pos(meta), op=children[0], scopes=tuple(children[1:]))

    def storage_op_kind(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def storage_scope(self, meta: Meta, children: list[Token]) -> ast.StorageScope:
        return ast.StorageScope(str(children[0]))

    def storage_entity(self, meta: Meta, children: list[str]) -> Marker:
        return Marker("entity", self._pos(meta), children[0])

    def entity_kind(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])
