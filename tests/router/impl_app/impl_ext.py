"""The extensions of the impl application (tests/router/test_voedger_impl.py)."""

from collections.abc import Awaitable, Callable
from typing import Any

from voedger.extensions import command, query
from voedger.state import Intents, State

MOCK: dict[str, Callable[[State, Intents], Awaitable[Any]]] = {}
"""What ``MockCmd`` and ``MockQry`` do, by their names, set by the test (Voedger's
``MockCmdExec`` and ``MockQryExec``); unset, they do nothing."""


async def _mocked(name: str, state: State, intents: Intents) -> None:
    hook = MOCK.get(name)
    if hook is not None:
        await hook(state, intents)


@command("impl_app.MockCmd")
async def mock_cmd(state: State, intents: Intents) -> None:
    await _mocked("MockCmd", state, intents)


@query("impl_app.MockQry")
async def mock_qry(state: State, intents: Intents) -> None:
    await _mocked("MockQry", state, intents)


@query("impl_app.QryIntents")
def qry_intents(state: State, intents: Intents) -> None:
    intents.result(Fld1="hello")


@command("impl_app.CmdWithResponseIntent")
def cmd_with_response_intent(state: State, intents: Intents) -> None:
    intents.respond(state.arg["StatusCodeToReturn"], "error from response intent")


@query("impl_app.QryWithResponseIntent")
def qry_with_response_intent(state: State, intents: Intents) -> None:
    intents.respond(state.arg["StatusCodeToReturn"], "error from response intent")


@command("impl_app.DeniedCmd")
def denied_cmd(state: State, intents: Intents) -> None:
    pass


@query("impl_app.DeniedQry")
def denied_qry(state: State, intents: Intents) -> None:
    intents.result(Dummy=1)


@query("impl_app.QryVoid")
def qry_void(state: State, intents: Intents) -> None:
    pass


@command("impl_app.CmdVoid")
def cmd_void(state: State, intents: Intents) -> None:
    pass


@command("impl_app.OtherCmd")
def other_cmd(state: State, intents: Intents) -> None:
    pass
