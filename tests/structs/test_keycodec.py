"""View keys sort like their values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voedger.appdef import DataKind, Field
from voedger.structs.keycodec import encode_key, encode_value, increment

I32 = Field(name="n", kind=DataKind.int32)
S = Field(name="s", kind=DataKind.string)
F = Field(name="f", kind=DataKind.float64)


@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_int_order(a: int, b: int) -> None:
    assert (encode_value(DataKind.int32, a, True) < encode_value(DataKind.int32, b, True)) == (a < b)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_float_order(a: float, b: float) -> None:
    ea, eb = encode_value(DataKind.float64, a, True), encode_value(DataKind.float64, b, True)
    if a < b:
        assert ea < eb
    elif a > b:
        assert ea > eb


@given(st.text(), st.integers(-5, 5), st.text(), st.integers(-5, 5))
def test_string_then_int_order(s1: str, n1: int, s2: str, n2: int) -> None:
    k1, k2 = encode_key([S, I32], [s1, n1]), encode_key([S, I32], [s2, n2])
    assert (k1 < k2) == ((s1.encode(), n1) < (s2.encode(), n2))


def test_prefix_range_of_last_string() -> None:
    lo = encode_key([I32, S], [1, "ab"])
    hi = increment(lo)
    inside = encode_key([I32, S], [1, "abz"])
    outside = encode_key([I32, S], [1, "ac"])
    assert lo <= inside < hi and not outside < hi
    assert increment(b"\xff\xff") == b""


def test_partial_key_matches_a_qname_whole() -> None:
    # sys.CollectionView's (DocQName, DocID): the documents of registry.Login are not those of
    # registry.LoginAlias, while a string given last still selects by prefix
    q = Field(name="q", kind=DataKind.QName)
    lo = encode_key([q, I32], ["registry.Login"], complete=False)
    hi = increment(lo)
    assert lo <= encode_key([q, I32], ["registry.Login", 7]) < hi
    other = encode_key([q, I32], ["registry.LoginAlias", 7])
    assert not lo <= other < hi
    s_lo = encode_key([S, I32], ["registry.Login"], complete=False)
    assert s_lo <= encode_key([S, I32], ["registry.LoginAlias", 7]) < increment(s_lo)
