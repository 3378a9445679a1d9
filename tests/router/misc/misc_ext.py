"""The extensions of the misc application (tests/router/test_voedger_misc.py)."""

from voedger.extensions import command, query
from voedger.state import Intents, State
from voedger.syserror import SysError


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


@command("misc.TTLStorageCmd")
async def ttl_storage(state: State, intents: Intents) -> None:
    """Put, CompareAndSwap or CompareAndDelete in the application's TTL store; Ok says whether it
    happened."""
    arg, store = state.arg, state.app_ttl
    key, value, expected, ttl = arg["Key"], arg.get("Value", ""), arg.get("ExpectedValue", ""), arg.get("TTLSeconds", 0)
    match arg["Operation"]:
        case "Put":
            ok = await store.insert_if_not_exists(key, value, ttl)
        case "CompareAndSwap":
            ok = await store.compare_and_swap(key, expected, value, ttl)
        case "CompareAndDelete":
            ok = await store.compare_and_delete(key, expected)
        case other:
            raise SysError(400, f"unknown operation: {other}")
    intents.result(Ok=ok)


@query("misc.TTLGetQry")
async def ttl_get(state: State, intents: Intents) -> None:
    value = await state.app_ttl.get(state.arg["Key"])
    intents.result(Value=value or "", Exists=value is not None)
