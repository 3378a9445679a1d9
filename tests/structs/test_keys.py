"""Key layouts: cracked sequences read back in numeric order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voedger.structs import ids, keys


@given(st.integers(0, (1 << 63) - 1), st.integers(0, (1 << 63) - 1))
def test_cracked_keys_sort_like_numbers(a: int, b: int) -> None:
    ka, kb = keys.wlog_key(7, a), keys.wlog_key(7, b)
    assert (ka < kb) == (a < b)
    assert keys.offset_from_key(*ka) == a


def test_4096_rows_per_storage_partition() -> None:
    first = keys.plog_key(3, 0)
    assert keys.plog_key(3, 4095)[0] == first[0]
    assert keys.plog_key(3, 4096)[0] != first[0]
    assert keys.record_key(1, ids.FIRST_USER_RECORD_ID)[1] == (ids.FIRST_USER_RECORD_ID & 0xFFF).to_bytes(2, "big")


def test_views_of_different_workspaces_do_not_share_partitions() -> None:
    assert keys.view_partition_key("app.Sales", 1, b"") != keys.view_partition_key("app.Sales", 2, b"")
    assert keys.view_partition_key("a.B", 1, b"x") != keys.view_partition_key("a.Bx", 1, b"")


def test_id_generator() -> None:
    gen = ids.IDGenerator()
    assert gen.next() == ids.FIRST_USER_RECORD_ID
    gen.observe(300000)
    assert gen.next() == 300001
    gen.observe(5)
    assert gen.next() == 300002
    assert ids.is_raw_id(1) and ids.is_raw_id(65535) and not ids.is_raw_id(65536)
    assert ids.is_singleton_id(65536) and not ids.is_singleton_id(ids.NON_EXISTING_RECORD_ID)
