"""The QName table: Voedger's rename rules, the entries a deployed schema applies, and rows of
records and views written under a name and read under the one it was renamed to."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from voedger.appdef import DataKind, Field, QName, View
from voedger.storage.mem import MemStorageFactory
from voedger.structs import qnames
from voedger.structs.events import CUD, Event
from voedger.structs.keycodec import encode_key
from voedger.structs.keys import record_key, view_partition_key
from voedger.structs.pending import Pending
from voedger.structs.qnames import RenameError, StoredNames, in_use, renamed
from voedger.structs.records import get_record, put_record
from voedger.structs.views import get_row, put_row, read_rows


def declares(*names: str) -> Callable[[str], bool]:
    return lambda name: name in names


def test_voedger_rules() -> None:
    old_schema = declares("a.Old", "a.Other")
    with pytest.raises(RenameError, match="names are equals"):
        renamed({}, "a.Old", "a.Old", old_schema)
    with pytest.raises(RenameError, match="old not found"):
        renamed({}, "a.Unknown", "a.New", old_schema)
    with pytest.raises(RenameError, match="new already exists"):
        renamed({}, "a.Old", "a.Other", old_schema)
    table = renamed({}, "a.Old", "a.New", old_schema)
    assert table == {"a.New": "a.Old"}
    with pytest.raises(RenameError, match="old not found"):  # twice: the old name is gone
        renamed(table, "a.Old", "a.New", old_schema)
    with pytest.raises(RenameError, match="new already exists"):  # its text is taken
        renamed(table, "a.Other", "a.Old", old_schema)
    assert renamed(table, "a.New", "a.Old", old_schema) == {}  # but back is fine
    # renamed again after a deploy with the new name: still stored under the first text
    assert renamed(table, "a.New", "a.Newer", declares("a.New", "a.Other")) == {"a.Newer": "a.Old"}


def test_what_a_schema_applies() -> None:
    table = {"a.New": "a.Old"}
    assert not in_use(table, declares("a.Old"))  # not redeployed with the new name yet
    names = in_use(table, declares("a.New"))
    assert names.stored("a.New") == "a.Old" and names.name("a.Old") == "a.New"
    assert names.stored("a.New$uniques$01") == "a.Old$uniques$01"  # names derived from it
    assert names.name("a.Old$uniques$01") == "a.New$uniques$01"
    assert names.stored("a.Other") == "a.Other" and names.name("a.Oldest") == "a.Oldest"
    with pytest.raises(RenameError, match="can not declare both"):
        in_use(table, declares("a.New", "a.Old"))


async def test_the_table_is_kept_in_storage() -> None:
    f = MemStorageFactory()
    await f.init("t")
    storage = await f.app_storage("t")
    assert await qnames.rename(storage, "a.Old", "a.New", declares("a.Old")) == {"a.New": "a.Old"}
    assert (await qnames.read_table(storage))[1] == {"a.New": "a.Old"}
    with pytest.raises(RenameError, match="old not found"):
        await qnames.rename(storage, "a.Old", "a.New", declares("a.Old"))
    names = in_use((await qnames.read_table(storage))[1], declares("a.New"))
    assert names.stored("a.New") == "a.Old"


TALLY = View(
    qname=QName("a", "Tally"),
    partition_key=(Field(name="Table", kind=DataKind.QName),),
    clustering_columns=(Field(name="ID", kind=DataKind.int64),),
    value=(Field(name="Record", kind=DataKind.Record),),
)


async def test_rows_written_under_a_name_are_read_under_the_new_one() -> None:
    f = MemStorageFactory()
    await f.init("t")
    storage = await f.app_storage("t")
    writes = Pending(storage)
    put_record(writes, 1, {"sys.ID": 5, "sys.QName": "a.Old", "Name": "x"})
    put_row(writes, TALLY, 1, {"Table": "a.Old", "ID": 5, "Record": {"sys.QName": "a.Old", "sys.ID": 5}})
    await storage.put_batch(writes.items())

    put_record(writes, 1, {"sys.ID": 7, "sys.QName": "a.Blob", "Owner": "a.Old"})
    await storage.put_batch(writes.items())

    qnames.bind(storage, StoredNames({"a.New": "a.Old", "a.Tally2": "a.Tally"}, {"a.Blob": ("Owner",)}))
    try:
        reader = Pending(storage)
        assert await get_record(reader, 1, 5) == {"sys.ID": 5, "sys.QName": "a.New", "Name": "x"}
        # a QName field of a record holds the new name, and is stored as the old text
        assert await get_record(reader, 1, 7) == {"sys.ID": 7, "sys.QName": "a.Blob", "Owner": "a.New"}
        writes = Pending(storage)
        put_record(writes, 1, {"sys.ID": 8, "sys.QName": "a.Blob", "Owner": "a.New"})
        assert orjson.loads(writes.items()[0][2])["Owner"] == "a.Old"
        tally2 = View(
            qname=QName("a", "Tally2"),
            partition_key=TALLY.partition_key,
            clustering_columns=TALLY.clustering_columns,
            value=TALLY.value,
        )
        expected = {"sys.QName": "a.Tally2", "Table": "a.New", "ID": 5, "Record": {"sys.QName": "a.New", "sys.ID": 5}}
        assert await get_row(reader, tally2, 1, {"Table": "a.New", "ID": 5}) == expected
        # written now under the new names: stored under the old texts, beside the old rows
        writes = Pending(storage)
        put_record(writes, 1, {"sys.ID": 6, "sys.QName": "a.New", "Name": "y"})
        put_row(writes, tally2, 1, {"Table": "a.New", "ID": 6, "Record": {"sys.QName": "a.New", "sys.ID": 6}})
        await storage.put_batch(writes.items())
        assert orjson.loads(await storage.get(*record_key(1, 6)) or b"")["sys.QName"] == "a.Old"
        rows = [r async for r in read_rows(Pending(storage), tally2, 1, {"Table": "a.New"})]
        assert [(r["ID"], r["Record"]["sys.QName"], r["sys.QName"]) for r in rows] == [
            (5, "a.New", "a.Tally2"),
            (6, "a.New", "a.Tally2"),
        ]
        # both rows sit in the one storage partition keyed by the old texts
        p_key = view_partition_key("a.Tally", 1, encode_key(TALLY.partition_key, ["a.Old"]))
        assert len([c async for c, _ in storage.read(p_key)]) == 2
    finally:
        qnames.bind(storage, qnames.IDENTITY)


def test_events_keep_the_stored_texts() -> None:
    names = StoredNames({"a.New": "a.Old", "a.Tally2": "a.Tally"})
    cud = CUD(True, 5, "a.New", {"Name": "x"})
    extra = {"records": [{"sys.ID": 6, "sys.QName": "a.New"}], "views": [["a.Tally2", {"ID": 5}]]}
    event = Event("a.Cmd", 1, 0, 1, 1, 0, cuds=(cud,), extra=extra)
    plog, wlog = event.encode_both(names)
    stored = orjson.loads(plog)
    assert stored["cuds"][0]["sys.QName"] == "a.Old" and stored["sys.QName"] == "a.Cmd"
    assert stored["extra"] == {"records": [{"sys.ID": 6, "sys.QName": "a.Old"}], "views": [["a.Tally", {"ID": 5}]]}
    assert orjson.loads(wlog)["cuds"][0]["sys.QName"] == "a.Old" and "extra" not in orjson.loads(wlog)
    assert event.extra == extra  # the event itself is left as it is
    back = Event.decode(plog, names)
    assert back.cuds == (cud,) and back.extra == extra
    assert Event.decode(plog).cuds[0].qname == "a.Old"  # no table: the text as stored
