"""WSIDs must agree bit for bit with Voedger's, whose clients compute them too."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voedger.structs import wsid as w


def test_layout_examples() -> None:
    assert w.new_wsid(1, 0) == 140737488355328
    assert w.new_wsid(1, 65536) == 140737488420864
    assert w.app_wsid(1, 0) == 140737488420864


def test_login_maps_to_app_workspace_and_partition() -> None:
    assert w.crc16(b"alice") == 48199
    pseudo = w.pseudo_wsid("alice")
    assert pseudo == 140737488403527
    assert w.is_pseudo(pseudo)
    app_ws = w.pseudo_to_app_wsid(pseudo, 10)
    assert app_ws == 140737488420873
    assert w.app_ws_number(pseudo, 10) == 9
    assert w.partition_of(app_ws, 10) == 3
    assert w.is_app_wsid(app_ws, 10) and not w.is_app_wsid(app_ws, 9)


def test_child_workspace_pseudo_wsid_uses_owner() -> None:
    assert w.pseudo_wsid("ws", owner_wsid=42) == w.new_wsid(1, w.crc16(b"42/ws"))


@given(st.integers(0, w.MAX_CLUSTER_ID), st.integers(0, w.MAX_BASE_WSID))
def test_roundtrip(cluster: int, base: int) -> None:
    wsid = w.new_wsid(cluster, base)
    assert 0 <= wsid <= w.MAX_WSID
    assert w.cluster_id(wsid) == cluster and w.base_wsid(wsid) == base


@pytest.mark.parametrize(("cluster", "base"), [(-1, 0), (0x10000, 0), (0, -1), (0, 1 << 47)])
def test_out_of_range(cluster: int, base: int) -> None:
    with pytest.raises(ValueError):
        w.new_wsid(cluster, base)
