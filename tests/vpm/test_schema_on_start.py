"""A server started over existing data with a schema that is not backward compatible with the one
it last served there says so (a warning listing the breaks) instead of starting silently."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voedger.vvm.server import VVM, ServerConfig

V1 = """APPLICATION shop();
WORKSPACE ShopWS (
    DESCRIPTOR ShopDesc (Name varchar);
    TABLE Item INHERITS sys.CDoc (Name varchar, Price int32);
);
"""


async def serve(data: Path, app: Path) -> None:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{data}", apps=[("test/shop", app)]))
    await vvm.start()
    await vvm.stop()


async def test_an_incompatible_schema_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "app.vsql").write_text(V1)
    data = tmp_path / "data"
    data.mkdir()
    caplog.set_level(logging.WARNING, logger="voedger.vvm")
    await serve(data, app)
    await serve(data, app)
    (app / "app.vsql").write_text(V1.replace(", Price int32", ", Price int32, Note varchar"))  # compatible
    await serve(data, app)
    assert "not compatible" not in caplog.text
    (app / "app.vsql").write_text(V1.replace(", Price int32", ""))
    await serve(data, app)
    warnings = [r.getMessage() for r in caplog.records if "not compatible" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "test/shop" in warnings[0]
    assert "AppDef/Types/shop.Item/Fields/Price: NodeRemoved" in warnings[0]
    # the new schema is what is remembered: the next start says nothing
    caplog.clear()
    await serve(data, app)
    assert "not compatible" not in caplog.text
