"""The QName table of an application: the text under which a renamed QName's data is stored.

Rows keep QNames as text (a record's ``sys.QName``, a view's key prefix, QName fields). Voedger
keeps QName IDs instead and renames a QName by giving its ID to the new name; here the table
maps a renamed QName to the text its data was first stored under, and that text stays the key:
rows written before and after a rename live under the same text, so one read finds both and a
rename rewrites no data. ``c.sys.RenameQName`` changes the table; an application reads it when
it is deployed (``in_use``), so a rename takes effect when the application is deployed again,
with the new name in its schema (as in Voedger, where it takes a restart).

The table is one row of the application's storage: a JSON object ``{name: stored text}`` with
an entry only for the names whose text differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from weakref import WeakKeyDictionary

import orjson

from voedger.appdef import SYS_QNAME, AppDef, DataKind
from voedger.storage import AppStorage
from voedger.storage.conditional import write_if
from voedger.structs.keys import app_state_key

_KEY = app_state_key("qnames", b"")


class RenameError(ValueError):
    """A rename the table refuses: Voedger's text, a client's mistake."""


class StoredNames:
    """Which text stands for which QName in the rows of one deployed application."""

    __slots__ = ("_names", "_texts", "qname_fields")

    def __init__(self, stored_as: Mapping[str, str], qname_fields: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self._texts = {n: s for n, s in stored_as.items() if n != s}
        self._names = {s: n for n, s in self._texts.items()}
        self.qname_fields: Mapping[str, tuple[str, ...]] = qname_fields or {}
        """The QName fields of records by their table (other than ``sys.QName``): the texts of
        renamed QNames they hold are mapped too."""

    def __bool__(self) -> bool:
        """False when every QName is stored as itself (nearly always)."""
        return bool(self._texts)

    def __repr__(self) -> str:
        return f"StoredNames({self._texts!r})"

    def stored(self, name: str) -> str:
        """The text rows keep for the QName ``name`` (and for the names derived from it, such as a
        table's uniques, ``Table$uniques$name``)."""
        return _lookup(self._texts, name)

    def name(self, stored: str) -> str:
        """The QName that rows keeping the text ``stored`` hold."""
        return _lookup(self._names, stored)


def _lookup(texts: Mapping[str, str], text: str) -> str:
    hit = texts.get(text)
    if hit is not None:
        return hit
    base, dollar, rest = text.partition("$")
    if dollar:
        hit = texts.get(base)
        if hit is not None:
            return f"{hit}${rest}"
    return text


IDENTITY = StoredNames({})

_BOUND: WeakKeyDictionary[AppStorage, StoredNames] = WeakKeyDictionary()


def bind(storage: AppStorage, names: StoredNames) -> None:
    """Make ``names`` the table that reads and writes of ``storage`` go through (at deploy)."""
    _BOUND[storage] = names


def names_of(storage: AppStorage) -> StoredNames:
    """The table bound to an application's storage (the identity if none is)."""
    return _BOUND.get(storage, IDENTITY)


async def read_table(storage: AppStorage) -> tuple[bytes | None, dict[str, str]]:
    """The stored row (for a conditional write) and the table it holds."""
    raw = await storage.get(_KEY, b"")
    return raw, (orjson.loads(raw) if raw is not None else {})


def in_use(
    table: Mapping[str, str],
    declared: Callable[[str], bool],
    qname_fields: Mapping[str, tuple[str, ...]] | None = None,
) -> StoredNames:
    """The entries of ``table`` an application with these names applies: those whose name it
    declares. An entry whose name it does not declare waits for a deploy that does (the schema
    still names the old text, whose rows it keeps reading). Raises ``RenameError`` for a schema
    that declares a renamed QName and also the text its rows are stored under."""
    active = {n: s for n, s in table.items() if declared(n)}
    for name, text in active.items():
        if declared(text):
            raise RenameError(
                f"QName «{text}» was renamed to «{name}»: a schema can not declare both "
                f"(rename «{name}» back to «{text}» or drop «{text}» from the schema)"
            )
    return StoredNames(active, qname_fields)


def renamed(table: Mapping[str, str], old: str, new: str, declared: Callable[[str], bool]) -> dict[str, str]:
    """The table after renaming ``old`` to ``new`` (Voedger's rules and texts): ``old`` must be a
    QName the application knows and has not renamed away, ``new`` a QName nothing uses."""
    fmt = f"can not rename QName from «{old}» to «{new}»: "
    if old == new:
        raise RenameError(fmt + "names are equals")
    taken = {s: n for n, s in table.items()}
    if old not in table and (not declared(old) or old in taken):
        raise RenameError(fmt + f"old not found: unknown QName «{old}»: name not found")
    text = table.get(old, old)
    if new != text and (new in table or new in taken or declared(new)):
        raise RenameError(fmt + "new already exists")
    updated = {n: s for n, s in table.items() if n != old}
    if new != text:
        updated[new] = text
    return updated


async def rename(storage: AppStorage, old: str, new: str, declared: Callable[[str], bool]) -> dict[str, str]:
    """Rename ``old`` to ``new`` in the application's table (a conditional write: two renames at
    once never lose one); the new table."""
    for _ in range(10):
        raw, table = await read_table(storage)
        updated = renamed(table, old, new, declared)
        if await write_if(storage, _KEY, b"", raw, orjson.dumps(updated, option=orjson.OPT_SORT_KEYS)):
            return updated
    raise RuntimeError("the QName table keeps changing: too many renames at once")  # pragma: no cover


def declared_by(app: AppDef) -> Callable[[str], bool]:
    """Whether ``app`` declares a QName (of any kind)."""
    return lambda name: app.find(name) is not None


def record_qname_fields(app: AppDef) -> dict[str, tuple[str, ...]]:
    """The QName fields of each table of ``app`` that has some (other than ``sys.QName``)."""
    out: dict[str, tuple[str, ...]] = {}
    for t in app.structures():
        names = tuple(f.name for f in t.fields if f.kind is DataKind.QName and f.name != SYS_QNAME)
        if names:
            out[str(t.qname)] = names
    return out


async def deploy(storage: AppStorage, app: AppDef) -> StoredNames:
    """Read the table for ``app`` being deployed, and bind the entries it applies to its storage."""
    _, table = await read_table(storage)
    names = in_use(table, declared_by(app), record_qname_fields(app))
    bind(storage, names)
    return names
