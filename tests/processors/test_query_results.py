"""What a query's extension answers is copied as JSON sees it (query._plain)."""

from __future__ import annotations

from voedger.appdef import QName
from voedger.processors.query import _plain


def test_results_are_copied_with_qnames_as_text_and_tuples_as_lists() -> None:
    nested = {"c": None, "d": 1.5, "e": True, "n": QName("p", "N")}
    value = {"a": 1, "b": [1, (2, QName("x", "Y"))], QName("p", "K"): nested, "s": "text"}
    plain = _plain(value)
    assert plain == {"a": 1, "b": [1, [2, "x.Y"]], "p.K": {"c": None, "d": 1.5, "e": True, "n": "p.N"}, "s": "text"}
    assert all(type(k) is str for k in plain) and type(plain["p.K"]["n"]) is str
    assert plain is not value and plain["p.K"] is not nested and plain["b"] is not value["b"]
    plain["p.K"]["c"] = 1  # a copy: changing the answer leaves the extension's objects alone
    assert nested["c"] is None
