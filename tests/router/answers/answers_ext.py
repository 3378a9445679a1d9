"""The extensions of the answers application."""

from voedger.extensions import command, query
from voedger.state import Intents, State


@command("answers.Lend")
def lend(state: State, intents: Intents) -> None:
    pass


@command("answers.Annotate")
async def annotate(state: State, intents: Intents) -> None:
    # Trusts the platform: the book a note refers to exists (a dangling reference crashes here).
    book = await state.record(state.arg["Book"])
    assert book is not None, "the platform let a dangling reference through"
    intents.insert("answers.Shelf", Name=book["Title"])


@command("answers.Count")
def count(state: State, intents: Intents) -> None:
    """Returns what the arguments ask for: a good result, or one that breaks the Total type."""
    label = state.arg.get("Label")
    if label == "missing":
        intents.result(Label="no total")
    elif label == "wrong type":
        intents.result(Total="many")
    else:
        intents.result(Total=state.arg["Total"] * 2)


@command("answers.Knock")
def knock(state: State, intents: Intents) -> None:
    pass


@query("answers.Hello")
def hello(state: State, intents: Intents) -> None:
    intents.result(Text="hello")


@query("answers.Echo")
def echo(state: State, intents: Intents) -> None:
    """Answers its text, then fails as an extension with a bug does."""
    intents.result(Text=state.arg["Text"])
    raise RuntimeError("test error")


@command("answers.Fail")
def fail(state: State, intents: Intents) -> None:
    raise RuntimeError("test error")
