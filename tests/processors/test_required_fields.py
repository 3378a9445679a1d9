"""A required field that is missing, null or empty is refused in Voedger's validator words.

Voedger answers such a request 400 with ``field is empty: <row> <field>: validate error code 4``
(its ``ErrFieldMissed`` wrapped by ``validateError(ECode_EmptyData, ...)``), one line per field,
whether the row is a CUD, a command's argument or a query's; a required reference to ID 0 is
``wrong record ID: ... has NullRecordID value: validate error code 6``. Clients match these texts,
so the same request gets the same words here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.processors.conftest import USER, WS, Shop
from tests.processors.test_query_v1 import fails
from voedger.syserror import SysError

NAME_EMPTY = "field is empty: CDoc «shop.Item» string-field «Name»: validate error code 4"
SALES_ITEM_EMPTY = "field is empty: Object «shop.SalesParams» RecordID-field «Item»: validate error code 4"


async def refused(shop: Shop, command: str, body: dict[str, Any]) -> str:
    with pytest.raises(SysError) as raised:
        await shop.cmd(WS, command, body)
    assert raised.value.status == 400, raised.value
    return raised.value.message


def create(qname: str, **fields: Any) -> dict[str, Any]:
    return {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": qname, **fields}}]}


@pytest.mark.parametrize("name", ["missing", None, ""])
async def test_a_create_without_its_required_field(shop: Shop, name: object) -> None:
    await shop.create_ws(WS)
    fields = {"Price": 1} if name == "missing" else {"Name": name, "Price": 1}
    assert await refused(shop, "sys.CUD", create("shop.Item", **fields)) == f"cuds[0]: {NAME_EMPTY}"


async def test_every_empty_field_of_a_record_is_named_in_declaration_order(shop: Shop) -> None:
    await shop.create_ws(WS)
    message = await refused(shop, "sys.CUD", create("shop.Visit", Day=3, Note="x", Year=None))
    assert message == "cuds[0]: " + "\n".join(
        f"field is empty: CDoc «shop.Visit» int32-field «{f}»: validate error code 4" for f in ("Year", "Month")
    )


async def test_an_update_may_not_empty_a_required_field(shop: Shop) -> None:
    await shop.create_ws(WS)
    rid = (await shop.cmd(WS, "sys.CUD", create("shop.Item", Name="tea"))).new_ids["1"]
    for value in ("", None):
        body = {"cuds": [{"sys.ID": rid, "fields": {"Name": value}}]}
        assert await refused(shop, "sys.CUD", body) == f"cuds[0]: {NAME_EMPTY}"
    # an update that leaves the required field alone needs not repeat it
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": rid, "fields": {"Price": 2}}]})


async def test_a_command_argument_without_its_required_reference(shop: Shop) -> None:
    await shop.create_ws(WS)
    message = await refused(shop, "shop.MakeOrder", {"args": {"sys.ID": 1, "Qty": 2}})
    assert message == "args: field is empty: ODoc «shop.Order» RecordID-field «Item»: validate error code 4"
    message = await refused(shop, "shop.MakeOrder", {"args": {"sys.ID": 1, "Item": 0}})
    assert message == (
        "args: wrong record ID: ODoc «shop.Order» required ref field «Item» has NullRecordID value: "
        "validate error code 6"
    )
    message = await refused(shop, "shop.Restock", {"args": {}})
    assert message == f"args: {SALES_ITEM_EMPTY}"


async def test_a_query_argument_without_its_required_field(shop: Shop) -> None:
    await shop.create_ws(WS)
    error = await fails(shop, "shop.GetSales", {"args": {}}, USER)
    assert error.status == 400
    assert error.message == f"args: {SALES_ITEM_EMPTY}"
