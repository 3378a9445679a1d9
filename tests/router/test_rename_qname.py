"""``c.sys.RenameQName`` over HTTP: data written under a table's and a view's old names is read
under the new ones once the application is deployed again with the schema renamed; before that
nothing changes; Voedger's refusals (and ours for the System only and the kinds not covered)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/cafe"
ALICE_PROFILE = new_wsid(1, 300_001)
CAFE = new_wsid(1, 300_002)
V1 = f"/api/test/cafe/{CAFE}"
V2 = f"/api/v2/apps/test/cafe/workspaces/{CAFE}"

SCHEMA = """APPLICATION cafe();
WORKSPACE CafeWS (
    DESCRIPTOR CafeDesc (Name varchar);
    TABLE {Category} INHERITS sys.CDoc (
        Name varchar(50) NOT NULL,
        Parts TABLE {Category}Part (Title varchar(20)),
        CONSTRAINT UniqueName UNIQUE (Name)
    );
    TABLE {Settings} INHERITS sys.CSingleton (Theme varchar(20));
    TABLE {Tab} INHERITS sys.WDoc (Number int32 NOT NULL);
    TABLE Dish INHERITS sys.CDoc (Cat ref({Category}), Name varchar(20));
    VIEW {Counts} (
        Part int32 NOT NULL,
        Kind int32 NOT NULL,
        Count int64,
        PRIMARY KEY ((Part), Kind)
    ) AS RESULT OF CountCategories;
    GRANT ALL ON ALL TABLES TO sys.WorkspaceOwner;
    GRANT SELECT ON ALL VIEWS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL COMMANDS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL QUERIES TO sys.WorkspaceOwner;
    EXTENSION ENGINE BUILTIN (
        SYNC PROJECTOR CountCategories AFTER INSERT ON ({Category})
            STATE(sys.View({Counts})) INTENTS(sys.View({Counts}));
    );
);
"""

EXT = """from voedger.extensions import projector


@projector("cafe.CountCategories")
async def count(state, intents):
    new = sum(1 for c in state.event.cuds if c.is_new and c.qname == "cafe.{Category}")
    row = await state.view("cafe.{Counts}", Part=0, Kind=0)
    intents.put_view("cafe.{Counts}", Part=0, Kind=0, Count=(row or {{}}).get("Count", 0) + new)
"""

OLD = {"Category": "Category", "Settings": "Settings", "Tab": "Tab", "Counts": "Counts"}
NEW = {"Category": "Group", "Settings": "Prefs", "Tab": "Bill", "Counts": "Tally"}


def app_folder(root: Path, names: dict[str, str]) -> Path:
    folder = root / f"v{len(list(root.glob('v*')))}" / "cafe"  # the package is named after its folder
    folder.mkdir(parents=True)
    (folder / "cafe.vsql").write_text(SCHEMA.format(**names))
    (folder / "cafe_ext.py").write_text(EXT.format(**names))
    return folder


@dataclass
class Cafe:
    vvm: VVM
    client: httpx.AsyncClient

    def owner(self) -> dict[str, str]:
        assert self.vvm.tokens is not None
        t = self.vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=ALICE_PROFILE), timedelta(hours=1))
        return {"Authorization": f"Bearer {t}"}

    def system(self) -> dict[str, str]:
        assert self.vvm.tokens is not None
        return {"Authorization": f"Bearer {self.vvm.tokens.issue_system(APP)}"}

    async def cud(self, *records: dict[str, Any]) -> dict[str, int]:
        body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
        r = await self.client.post(f"{V1}/c.sys.CUD", json=body, headers=self.owner())
        assert r.status_code == 200, r.text
        return {k: int(v) for k, v in r.json().get("NewIDs", {}).items()}

    def singleton_id(self, table: str) -> int:
        return self.vvm.app(APP).runtime.singleton_ids[QName.parse(table)]

    async def rename(self, old: str, new: str, headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"args": {"ExistingQName": old, "NewQName": new}}
        return await self.client.post(f"{V1}/c.sys.RenameQName", json=body, headers=headers or self.system())

    async def collection(self, table: str) -> list[dict[str, Any]]:
        body = {"args": {"Schema": table}, "elements": [{"fields": ["sys.ID", "Name"]}]}
        r = await self.client.post(f"{V1}/q.sys.Collection", json=body, headers=self.owner())
        assert r.status_code == 200, r.text
        return [{"sys.ID": e[0][0][0], "Name": e[0][0][1]} for e in r.json()["sections"][0]["elements"]]

    async def get(self, table: str, record_id: int) -> httpx.Response:
        return await self.client.get(f"{V2}/docs/{table}/{record_id}", headers=self.owner())

    async def count(self, view: str) -> int:
        r = await self.client.get(f"{V2}/views/{view}", params={"where": '{"Part":0}'}, headers=self.owner())
        assert r.status_code == 200, r.text
        return int(r.json()["results"][0]["Count"])


async def start(tmp: Path, folder: Path) -> VVM:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp / 'data'}", apps=[(APP, folder)], clock=ManualClock(1.79e9)))
    await vvm.start()
    return vvm


@pytest.fixture
async def cafe(tmp_path: Path) -> AsyncIterator[tuple[Path, Cafe]]:
    (tmp_path / "data").mkdir()
    vvm = await start(tmp_path, app_folder(tmp_path, OLD))
    desc: dict[str, Any] = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    for wsid, records in (
        (ALICE_PROFILE, [{**desc, "WSName": "alice", "WSKind": "sys.UserProfile"}, {"sys.QName": "sys.UserProfile"}]),
        (CAFE, [{**desc, "WSName": "cafe", "WSKind": "cafe.CafeDesc", "OwnerWSID": ALICE_PROFILE}]),
    ):
        body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
        request = CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True)
        await vvm.app(APP).partition(wsid).submit(request)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(vvm, {1: LocalTransport(vvm)})), base_url="http://t"
    )
    env = Cafe(vvm, client)
    try:
        yield tmp_path, env
    finally:
        await env.client.aclose()
        await env.vvm.stop()


async def redeploy(tmp: Path, env: Cafe, names: dict[str, str]) -> None:
    """Stop the server and start it again with the application's schema named ``names``."""
    await env.client.aclose()
    await env.vvm.stop()
    env.vvm = await start(tmp, app_folder(tmp, names))
    transport = httpx.ASGITransport(app=build_app(env.vvm, {1: LocalTransport(env.vvm)}))
    env.client = httpx.AsyncClient(transport=transport, base_url="http://t")


def v1_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()["sys.Error"]
    assert body["HTTPStatus"] == status and text in body["Message"], body


async def test_data_is_read_under_the_new_names_after_a_redeploy(
    cafe: tuple[Path, Cafe], caplog: pytest.LogCaptureFixture
) -> None:
    tmp, env = cafe
    part = {"sys.QName": "cafe.CategoryPart", "sys.ParentID": 1, "sys.Container": "Parts", "Title": "hot"}
    ids = await env.cud({"sys.QName": "cafe.Category", "Name": "drinks"}, part)
    drinks, drinks_part = ids["1"], ids["2"]
    await env.cud({"sys.QName": "cafe.Settings", "Theme": "dark"})
    settings = env.singleton_id("cafe.Settings")
    tab = (await env.cud({"sys.QName": "cafe.Tab", "Number": 7}))["1"]
    assert await env.count("cafe.Counts") == 1

    for old, new in (
        ("cafe.Category", "cafe.Group"),
        ("cafe.CategoryPart", "cafe.GroupPart"),
        ("cafe.Settings", "cafe.Prefs"),
        ("cafe.Tab", "cafe.Bill"),
        ("cafe.Counts", "cafe.Tally"),
    ):
        r = await env.rename(old, new)
        assert r.status_code == 200, r.text

    # Nothing changes until the application is deployed again (as in Voedger: a restart).
    assert [c["Name"] for c in await env.collection("cafe.Category")] == ["drinks"]
    assert await env.count("cafe.Counts") == 1

    await redeploy(tmp, env, NEW)
    assert "not compatible" not in caplog.text  # the renamed schema is the same schema
    # records: by ID (API v2 docs, q.sys.GetCDoc) and by table (q.sys.Collection, API v2 cdocs)
    r = await env.get("cafe.Group", drinks)
    assert r.status_code == 200 and r.json()["Name"] == "drinks" and r.json()["sys.QName"] == "cafe.Group", r.text
    r = await env.get("cafe.Category", drinks)
    assert r.status_code in (400, 404), r.text  # the old name is gone from the schema
    body = {"args": {"ID": drinks}, "elements": [{"fields": ["Result"]}]}
    r = await env.client.post(f"{V1}/q.sys.GetCDoc", json=body, headers=env.owner())
    assert r.status_code == 200, r.text
    doc = orjson.loads(r.json()["sections"][0]["elements"][0][0][0][0])
    assert doc["Name"] == "drinks" and [p["Title"] for p in doc["Parts"]] == ["hot"], doc
    r = await env.get("cafe.GroupPart", drinks_part)
    assert r.status_code == 200 and r.json()["Title"] == "hot", r.text
    assert env.singleton_id("cafe.Prefs") == settings
    r = await env.client.get(f"{V2}/docs/cafe.Prefs", headers=env.owner())  # a singleton: no ID
    assert r.status_code == 200 and r.json()["Theme"] == "dark", r.text
    r = await env.get("cafe.Bill", tab)
    assert r.status_code == 200 and r.json()["Number"] == 7, r.text

    # new rows join the old ones under the new name; one read finds both
    food = (await env.cud({"sys.QName": "cafe.Group", "Name": "food"}))["1"]
    assert sorted((c["sys.ID"], c["Name"]) for c in await env.collection("cafe.Group")) == [
        (drinks, "drinks"),
        (food, "food"),
    ]
    r = await env.client.get(f"{V2}/cdocs/cafe.Group", headers=env.owner())
    assert r.status_code == 200 and sorted(x["Name"] for x in r.json()["results"]) == ["drinks", "food"], r.text
    # the workspace's events (the WLog), old and new, name the new table
    args = {"From": 1, "Till": 20, "EventTypes": "all", "RangeUnit": "Offset"}
    body = {"args": args, "elements": [{"fields": ["Event"]}]}
    r = await env.client.post(f"{V1}/q.sys.Journal", json=body, headers=env.owner())
    assert r.status_code == 200, r.text
    events = [orjson.loads(e[0][0][0]) for e in r.json()["sections"][0]["elements"]]
    tables = [c["sys.QName"] for e in events for c in e.get("cuds", [])]
    assert tables.count("cafe.Group") == 2 and "cafe.GroupPart" in tables and "cafe.Bill" in tables, tables
    assert not [t for t in tables if t in ("cafe.Category", "cafe.CategoryPart", "cafe.Tab")], tables
    # the view kept its rows: the projector went on counting from the old count
    assert await env.count("cafe.Tally") == 2
    # the unique, the singleton and references still know the old rows
    r = await env.client.post(
        f"{V1}/c.sys.CUD",
        json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "cafe.Group", "Name": "drinks"}}]},
        headers=env.owner(),
    )
    assert r.status_code == 409, r.text
    r = await env.client.post(
        f"{V1}/c.sys.CUD",
        json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "cafe.Prefs", "Theme": "light"}}]},
        headers=env.owner(),
    )
    assert r.status_code == 409, r.text
    await env.cud({"sys.QName": "cafe.Dish", "Cat": drinks, "Name": "tea"})

    # renamed back: the same rows under the first names again
    for new, old in (("cafe.Group", "cafe.Category"), ("cafe.GroupPart", "cafe.CategoryPart")):
        r = await env.rename(new, old)
        assert r.status_code == 200, r.text
    names = {**NEW, "Category": "Category"}
    await redeploy(tmp, env, names)
    assert sorted(c["Name"] for c in await env.collection("cafe.Category")) == ["drinks", "food"]
    assert await env.count("cafe.Tally") == 2


async def test_a_restart_before_the_schema_is_renamed_keeps_the_old_name(cafe: tuple[Path, Cafe]) -> None:
    tmp, env = cafe
    drinks = (await env.cud({"sys.QName": "cafe.Category", "Name": "drinks"}))["1"]
    assert (await env.rename("cafe.Category", "cafe.Group")).status_code == 200
    await redeploy(tmp, env, {**OLD, "Counts": "Counts2"})  # the schema still names cafe.Category
    r = await env.get("cafe.Category", drinks)
    assert r.status_code == 200 and r.json()["sys.QName"] == "cafe.Category", r.text
    await redeploy(tmp, env, {**OLD, "Counts": "Counts3", "Category": "Group"})
    r = await env.get("cafe.Group", drinks)
    assert r.status_code == 200 and r.json()["Name"] == "drinks", r.text


async def test_refusals(cafe: tuple[Path, Cafe]) -> None:
    _, env = cafe
    # Voedger grants it to the workspace's owner (docs/design.md, "Differences"); here it is the
    # System's only, over API v1 and v2, whatever the application's ACL grants the owner
    only = "sys.RenameQName may be executed by the System only"
    v1_error(await env.rename("cafe.Category", "cafe.Group", env.owner()), 403, only)
    body = {"args": {"ExistingQName": "cafe.Category", "NewQName": "cafe.Group"}}
    r = await env.client.post(f"{V2}/commands/sys.RenameQName", json=body, headers=env.owner())
    assert r.status_code == 403 and r.json() == {"status": 403, "message": only}, r.text
    r = await env.client.post(
        f"{V1}/c.sys.RenameQName", json={"args": {"ExistingQName": "cafe.Tab", "NewQName": "cafe.X"}}
    )
    assert r.status_code in (401, 403), r.text
    # Voedger's texts
    v1_error(await env.rename("cafe.Category", "cafe.Category"), 400, "names are equals")
    v1_error(await env.rename("cafe.Nothing", "cafe.Group"), 400, "old not found")
    v1_error(await env.rename("cafe.Category", "cafe.Dish"), 400, "new already exists")
    assert (await env.rename("cafe.Category", "cafe.Group")).status_code == 200
    v1_error(await env.rename("cafe.Category", "cafe.Group"), 400, "old not found")  # renamed already
    v1_error(await env.rename("cafe.Tab", "cafe.Group"), 400, "new already exists")  # taken by the rename
    assert (await env.rename("cafe.Group", "cafe.Category")).status_code == 200  # and back, as in Voedger
    # what the table does not cover, and what is no QName
    v1_error(await env.rename("cafe.CountCategories", "cafe.Counter"), 400, "can not be renamed")
    v1_error(await env.rename("sys.WorkspaceDescriptor", "cafe.Descriptor"), 400, "sys package")
    v1_error(await env.rename("cafe.CafeDesc", "cafe.Descriptor"), 400, "workspace descriptor")
    v1_error(await env.rename("cafe.Tab", "nodot"), 400, "can not rename QName")
