"""The extensions of the misc application (tests/router/test_voedger_misc.py)."""

from voedger.extensions import command, query
from voedger.state import Intents, State


@command("misc.RatedCmd")
def rated_cmd(state: State, intents: Intents) -> None:
    pass


@query("misc.RatedQry")
def rated_qry(state: State, intents: Intents) -> None:
    intents.result(Fld="")


@command("misc.IPRatedCmd")
def ip_rated_cmd(state: State, intents: Intents) -> None:
    pass


@query("misc.IPRatedQry")
def ip_rated_qry(state: State, intents: Intents) -> None:
    intents.result(Fld="")


@command("misc.Answer")
def answer(state: State, intents: Intents) -> None:
    """42, with a text only when Arg1 is 1."""
    if state.arg["Arg1"] == 1:
        intents.result(Int=42, Str="Str")
    else:
        intents.result(Int=42)


@query("misc.AskAnswer")
async def ask_answer(state: State, intents: Intents) -> None:
    """Runs misc.Answer in this very workspace and reports what it returned."""
    reply = await state.federation_command(state.app_name, state.wsid, "c.misc.Answer", {"args": {"Arg1": 2}})
    result = reply.result or {}
    if result.get("Int") != 42:
        raise RuntimeError(f"unexpected result: {result}")
    intents.result(Res=f"{state.arg['Input']}: {result['Int']}")


@command("misc.TwoWaitersOneID")
def two_waiters_one_id(state: State, intents: Intents) -> None:
    intents.insert("misc.Waiter", **{"sys.ID": 1, "Name": "first"})
    intents.insert("misc.Waiter", **{"sys.ID": 1, "Name": "second"})
